"""The ledger: the bridge protocol's rules over a `LedgerStore`.

A call moves `INTENDED → DISPATCHED → COMPLETED | FAILED → APPLIED`, or ends ABANDONED with a
reason; each method here is one `Transition` (see `calls.py`) applied atomically by the store,
so every adapter follows the same rules. The `a`-prefixed methods are what an event loop
awaits.

Closing a thread's calls (`settle_thread`: its thread was deleted, or is gone) closes each
record ABANDONED with the reason, revokes the calls a worker may still run, and forgets the
thread's records; those a worker may still run stay, closed and unindexed, until a while after
their deadline, so a late worker finds them closed and neither runs nor reopens them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from graphrelay.bridge.calls import (
    CallRecord,
    CallStatus,
    count_attempt,
    count_first_attempt,
    to_abandoned,
    to_applied,
    to_dispatched,
    to_finished,
    to_repaired_or_parked,
)
from graphrelay.bridge.ports import Dispatcher, LedgerStore

log = logging.getLogger(__name__)

# How long the closed record of a call a worker may still run is kept after the call's
# deadline (Celery stops a task 30 s past its timeout; redeliveries come soon after), and for
# how long when the record has no deadline.
KEEP_CLOSED_AFTER_DEADLINE = 300.0
KEEP_CLOSED_WITHOUT_DEADLINE = 3600.0


class Ledger:
    """Durable records of background calls, shared by the API and every worker."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    def intend(self, record: CallRecord) -> CallRecord:
        """Store `record` as INTENDED unless its key exists; return the stored record."""
        return self.store.intend(record)

    async def aintend(self, record: CallRecord) -> CallRecord:
        """`intend`, awaited."""
        return await self.store.aintend(record)

    def get(self, task_id: str) -> CallRecord | None:
        """The record for `task_id`, or None."""
        return self.store.get(task_id)

    async def aget(self, task_id: str) -> CallRecord | None:
        """`get`, awaited."""
        return await self.store.aget(task_id)

    def for_thread(self, thread_id: str) -> list[CallRecord]:
        """Every record of one thread, oldest first."""
        return self.store.for_thread(thread_id)

    async def afor_thread(self, thread_id: str) -> list[CallRecord]:
        """`for_thread`, awaited."""
        return await self.store.afor_thread(thread_id)

    def mark_dispatched(self, task_id: str) -> None:
        """INTENDED → DISPATCHED (no-op from any other state)."""
        self.store.update(task_id, to_dispatched)

    async def amark_dispatched(self, task_id: str) -> None:
        """`mark_dispatched`, awaited."""
        await self.store.aupdate(task_id, to_dispatched)

    def start_attempt(self, task_id: str, first_only: bool = False) -> int:
        """Count one more execution by a worker; the new count, 0 if nothing was counted.

        With `first_only` nothing is counted when an execution already started.
        """
        record = self.store.update(task_id, count_first_attempt if first_only else count_attempt)
        return record.attempts if record else 0

    def finish(
        self, task_id: str, status: CallStatus, result: Any = None, error: str | None = None
    ) -> bool:
        """Store the outcome if none is stored yet (first write wins); True if this one won."""
        changed = self.store.update(task_id, lambda r: to_finished(r, status, result, error))
        return changed is not None

    async def afinish(
        self, task_id: str, status: CallStatus, result: Any = None, error: str | None = None
    ) -> bool:
        """`finish`, awaited."""
        changed = await self.store.aupdate(task_id, lambda r: to_finished(r, status, result, error))
        return changed is not None

    def mark_applied(self, task_ids: Iterable[str]) -> None:
        """COMPLETED | FAILED → APPLIED once the thread has taken the outcome in."""
        for task_id in task_ids:
            self.store.update(task_id, to_applied)

    async def amark_applied(self, task_ids: Iterable[str]) -> None:
        """`mark_applied`, awaited."""
        await asyncio.gather(*(self.store.aupdate(task_id, to_applied) for task_id in task_ids))

    def stale(self, status: CallStatus, updated_before: float, limit: int) -> list[CallRecord]:
        """Up to `limit` records in `status` unchanged since `updated_before`, oldest first."""
        return self.store.stale(status, updated_before, limit)

    def overdue(self, now: float, limit: int) -> list[CallRecord]:
        """Up to `limit` INTENDED or DISPATCHED records whose deadline is before `now`."""
        return self.store.overdue(now, limit)

    def abandoned(self, limit: int = 100) -> list[CallRecord]:
        """Up to `limit` calls parked ABANDONED while their thread lives, each with its
        `reason`, oldest first."""
        return self.store.abandoned(limit)

    def note_failed_repair(
        self, task_id: str, status: CallStatus, reason: str, max_repairs: int
    ) -> CallRecord | None:
        """A repair left the record in `status`: count it, and park the record ABANDONED with
        `reason` at `max_repairs`. The changed record, or None if it had moved on."""
        return self.store.update(
            task_id, lambda r: to_repaired_or_parked(r, status, reason, max_repairs)
        )

    async def aclose_thread(self, thread_id: str, reason: str) -> list[CallRecord]:
        """Close every call of a thread that is not applied ABANDONED with `reason`, and
        forget the thread's records (keeping, for a while, those a worker may still run);
        the calls closed now."""
        closed = []
        for record in await self.store.afor_thread(thread_id):
            changed = await self.store.aupdate(record.task_id, lambda r: _close(r, reason))
            if changed is not None:
                closed.append(changed)
        await self.store.aforget_thread(thread_id, {r.task_id for r in closed if r.forget_at})
        return closed

    def forget_expired(self, now: float | None = None) -> int:
        """Drop index entries of expired records and closed records kept past their time."""
        return self.store.forget_expired(time.time() if now is None else now)

    def close(self) -> None:
        """Release the store's connections."""
        self.store.close()


async def settle_thread(
    ledger: Ledger, dispatcher: Dispatcher, thread_id: str, reason: str
) -> list[CallRecord]:
    """Settle the calls of a thread that is gone: close them ABANDONED with `reason`, revoke
    those a worker may still run (best effort: a closed record stops a late worker anyway),
    and forget the thread's records. The calls closed."""
    closed = await ledger.aclose_thread(thread_id, reason)
    for record in closed:
        if record.forget_at is not None:
            try:
                await asyncio.to_thread(dispatcher.revoke, record.task_id)
            except Exception:  # the broker may be away; the closed record stops the call
                log.warning("could not revoke %s", record.task_id, exc_info=True)
    if closed:
        log.info("closed %d call(s) of thread %s: %s", len(closed), thread_id, reason)
    return closed


def _close(record: CallRecord, reason: str) -> bool:
    """Close a call of a gone thread. One a worker may still run (no outcome yet; parked
    ones too) is kept, closed, until a while after its deadline."""
    if record.finished_at is not None:
        return to_abandoned(record, reason)
    now = time.time()
    if record.deadline is None:
        keep_until = now + KEEP_CLOSED_WITHOUT_DEADLINE
    else:
        keep_until = max(record.deadline, now) + KEEP_CLOSED_AFTER_DEADLINE
    if record.status == CallStatus.ABANDONED and record.forget_at is None:
        record.forget_at = keep_until  # parked: it keeps its own reason
        return True
    return to_abandoned(record, reason, keep_until)
