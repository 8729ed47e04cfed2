"""A background call: its idempotency key, its ledger record, its outcome, and the
transitions between its states (INTENDED → DISPATCHED → COMPLETED | FAILED → APPLIED, or
ABANDONED with a reason: its thread was deleted, or the sweeper parked a repair that kept
failing)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from xxhash import xxh3_128_hexdigest


class CallStatus(StrEnum):
    """Where a background call stands: INTENDED → DISPATCHED → COMPLETED | FAILED → APPLIED;
    any state but APPLIED may end ABANDONED (closed for good, with a `reason`)."""

    INTENDED = "intended"
    DISPATCHED = "dispatched"
    COMPLETED = "completed"
    FAILED = "failed"
    APPLIED = "applied"
    ABANDONED = "abandoned"


OPEN_STATUSES = frozenset({CallStatus.INTENDED, CallStatus.DISPATCHED})
# What the sweeper may have to repair; APPLIED and ABANDONED records are done for good.
SWEPT_STATUSES = (
    CallStatus.INTENDED,
    CallStatus.DISPATCHED,
    CallStatus.COMPLETED,
    CallStatus.FAILED,
)
FINISHED_STATUSES = frozenset({CallStatus.COMPLETED, CallStatus.FAILED, CallStatus.APPLIED})
# Indexed by status in the ledger: what the sweeper repairs, and the parked records (ABANDONED
# while their thread lives) that an operator may look up.
INDEXED_STATUSES = (*SWEPT_STATUSES, CallStatus.ABANDONED)
CLOSED_STATUSES = frozenset({CallStatus.APPLIED, CallStatus.ABANDONED})

PENDING_INTERRUPT_TYPE = "background_task_pending"


def idempotency_key(thread_id: str, checkpoint_ns: str, tool_call_id: str) -> str:
    """The key of one background call; it is also the Celery task id.

    The checkpoint namespace names the node and task path (e.g. `tools:<task id>`, nested
    for subgraphs), so the same tool_call_id in two subgraphs gives two keys.
    """
    digest = hashlib.sha256(f"{thread_id}\x1f{checkpoint_ns}\x1f{tool_call_id}".encode())
    return "gr-" + digest.hexdigest()[:40]


def wake_id(task_id: str) -> str:
    """The interrupt id of a pending background call: 32 hex digits, LangGraph's id format (so
    `Command(resume={id: ...})` is read as a resume map), derived from the call's key with a
    prefix no checkpoint namespace has, so it never equals an id LangGraph gives an
    `interrupt()` call (`xxh3(ns)` or `xxh3(ns|n)`, langgraph/types.py `_interrupt_id`)."""
    return xxh3_128_hexdigest(f"graphrelay-wake\x00{task_id}".encode())


class CallRecord(BaseModel):
    """One background call, as the ledger holds it."""

    task_id: str
    thread_id: str
    checkpoint_ns: str = ""
    tool_call_id: str = ""
    tool: str
    queue: str
    args: dict[str, Any] = Field(default_factory=dict)
    fire_and_forget: bool = False
    status: CallStatus = CallStatus.INTENDED
    result: Any = None
    error: str | None = None
    attempts: int = 0
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    deadline: float | None = None
    reason: str | None = None  # why the call was ABANDONED
    repairs: int = 0  # sweeper repairs that left the record where it was
    forget_at: float | None = None  # when the ledger forgets a closed call of a deleted thread

    @property
    def finished(self) -> bool:
        """True once the worker's outcome is stored."""
        return self.status in FINISHED_STATUSES

    def outcome(self) -> CallOutcome:
        """The stored outcome; only meaningful once `finished`."""
        return CallOutcome(task_id=self.task_id, result=self.result, error=self.error)


class CallOutcome(BaseModel):
    """What a finished background call produced: a result or a readable error."""

    task_id: str
    result: Any = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        """True when the tool raised or timed out."""
        return self.error is not None


# Transitions: each changes `record` in place and says whether it changed it. Every ledger
# adapter applies them inside its own atomic read-modify-write.
Transition = Callable[[CallRecord], bool]


def count_attempt(record: CallRecord) -> bool:
    """One more execution by a worker; a record a worker runs is DISPATCHED at least. False
    for an ABANDONED call: nothing may run it any more."""
    if record.status == CallStatus.ABANDONED:
        return False
    record.attempts += 1
    if record.status == CallStatus.INTENDED:
        record.status = CallStatus.DISPATCHED
    return True


def count_first_attempt(record: CallRecord) -> bool:
    """The first execution by a worker; False if one already started."""
    return record.attempts == 0 and count_attempt(record)


def to_dispatched(record: CallRecord) -> bool:
    """INTENDED → DISPATCHED; False when the record is elsewhere."""
    if record.status != CallStatus.INTENDED:
        return False
    record.status = CallStatus.DISPATCHED
    return True


def to_finished(record: CallRecord, status: CallStatus, result: Any, error: str | None) -> bool:
    """Store the outcome unless one is stored (first write wins)."""
    if record.status not in OPEN_STATUSES:
        return False
    record.status, record.result, record.error = status, result, error
    record.finished_at = time.time()
    return True


def to_applied(record: CallRecord) -> bool:
    """COMPLETED | FAILED → APPLIED."""
    if record.status not in FINISHED_STATUSES or record.status == CallStatus.APPLIED:
        return False
    record.status = CallStatus.APPLIED
    return True


def to_abandoned(record: CallRecord, reason: str, forget_at: float | None = None) -> bool:
    """Close the call for good with `reason`, unless it was applied or closed already; an
    outcome already stored stays in the record, unused. `forget_at`: when the ledger may
    forget the closed record (None: as any other)."""
    if record.status in CLOSED_STATUSES:
        return False
    record.status, record.reason, record.forget_at = CallStatus.ABANDONED, reason, forget_at
    return True


def to_repaired_or_parked(
    record: CallRecord, status: CallStatus, reason: str, max_repairs: int
) -> bool:
    """A sweeper repair left the record in `status`: count it (the write moves the record to
    the back of its status index, behind the records not tried yet) and, at `max_repairs`,
    park it ABANDONED with `reason`. False when the record moved on meanwhile."""
    if record.status != status:
        return False
    record.repairs += 1
    if record.repairs >= max_repairs:
        record.status = CallStatus.ABANDONED
        record.reason = f"parked after {record.repairs} failed repairs: {reason}"
    return True
