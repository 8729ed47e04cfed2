"""The ledger: the bridge protocol's rules over a `LedgerStore`.

A call moves `INTENDED → DISPATCHED → COMPLETED | FAILED → APPLIED`; each method here is one
`Transition` (see `calls.py`) applied atomically by the store, so every adapter follows the
same rules. The `a`-prefixed methods are what an event loop awaits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from graphrelay.bridge.calls import (
    CallRecord,
    CallStatus,
    count_attempt,
    count_first_attempt,
    to_applied,
    to_dispatched,
    to_finished,
)
from graphrelay.bridge.ports import LedgerStore


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

    def close(self) -> None:
        """Release the store's connections."""
        self.store.close()
