"""The ledger record of one background call and the states it moves through."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class TaskStatus(StrEnum):
    """Where a background call stands: INTENDED → DISPATCHED → COMPLETED | FAILED → APPLIED."""

    INTENDED = "intended"
    DISPATCHED = "dispatched"
    COMPLETED = "completed"
    FAILED = "failed"
    APPLIED = "applied"
    ABANDONED = "abandoned"


OPEN_STATUSES = frozenset({TaskStatus.INTENDED, TaskStatus.DISPATCHED})
# What the sweeper may have to repair; APPLIED and ABANDONED records are done for good.
SWEPT_STATUSES = (
    TaskStatus.INTENDED,
    TaskStatus.DISPATCHED,
    TaskStatus.COMPLETED,
    TaskStatus.FAILED,
)
FINISHED_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.APPLIED})

PENDING_INTERRUPT_TYPE = "background_task_pending"


def idempotency_key(thread_id: str, checkpoint_ns: str, tool_call_id: str) -> str:
    """The key of one background call; it is also the Celery task id.

    The checkpoint namespace names the node and task path (e.g. `tools:<task id>`, nested
    for subgraphs), so the same tool_call_id in two subgraphs gives two keys.
    """
    digest = hashlib.sha256(f"{thread_id}\x1f{checkpoint_ns}\x1f{tool_call_id}".encode())
    return "gr-" + digest.hexdigest()[:40]


class TaskRecord(BaseModel):
    """One background call, as the ledger holds it."""

    task_id: str
    thread_id: str
    checkpoint_ns: str = ""
    tool_call_id: str = ""
    tool: str
    queue: str
    args: dict[str, Any] = Field(default_factory=dict)
    fire_and_forget: bool = False
    status: TaskStatus = TaskStatus.INTENDED
    result: Any = None
    error: str | None = None
    attempts: int = 0
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    deadline: float | None = None

    @property
    def finished(self) -> bool:
        """True once the worker's outcome is stored."""
        return self.status in FINISHED_STATUSES

    def outcome(self) -> TaskOutcome:
        """The stored outcome; only meaningful once `finished`."""
        return TaskOutcome(task_id=self.task_id, result=self.result, error=self.error)


class TaskOutcome(BaseModel):
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
Transition = Callable[[TaskRecord], bool]


def count_attempt(record: TaskRecord) -> bool:
    """One more execution by a worker; a record a worker runs is DISPATCHED at least."""
    record.attempts += 1
    if record.status == TaskStatus.INTENDED:
        record.status = TaskStatus.DISPATCHED
    return True


def count_first_attempt(record: TaskRecord) -> bool:
    """The first execution by a worker; False if one already started."""
    return record.attempts == 0 and count_attempt(record)


def to_dispatched(record: TaskRecord) -> bool:
    """INTENDED → DISPATCHED; False when the record is elsewhere."""
    if record.status != TaskStatus.INTENDED:
        return False
    record.status = TaskStatus.DISPATCHED
    return True


def to_finished(record: TaskRecord, status: TaskStatus, result: Any, error: str | None) -> bool:
    """Store the outcome unless one is stored (first write wins)."""
    if record.status not in OPEN_STATUSES:
        return False
    record.status, record.result, record.error = status, result, error
    record.finished_at = time.time()
    return True


def to_applied(record: TaskRecord) -> bool:
    """COMPLETED | FAILED → APPLIED."""
    if record.status not in FINISHED_STATUSES or record.status == TaskStatus.APPLIED:
        return False
    record.status = TaskStatus.APPLIED
    return True


class TaskCallback(BaseModel):
    """The body a worker POSTs to `/internal/tasks/callback` when a task finishes."""

    model_config = {"extra": "forbid"}

    task_id: str = Field(min_length=1, max_length=200)
    thread_id: str = Field(min_length=1, max_length=200)
    status: Literal["completed", "failed"]
    result: Any = None
    error: str | None = None

    @classmethod
    def from_record(cls, record: TaskRecord) -> TaskCallback:
        """The callback body for a finished record."""
        return cls(
            task_id=record.task_id,
            thread_id=record.thread_id,
            status="failed" if record.error is not None else "completed",
            result=record.result,
            error=record.error,
        )
