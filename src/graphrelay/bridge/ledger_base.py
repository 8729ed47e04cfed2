"""The ledger's transitions, shared by every adapter that can apply one atomically.

The `a`-prefixed coroutines are what the API's event loop calls. By default they run the sync
method in a worker thread; an adapter with an async driver (Redis) overrides the primitives.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from graphrelay.bridge.records import (
    TaskRecord,
    TaskStatus,
    Transition,
    count_attempt,
    count_first_attempt,
    to_applied,
    to_dispatched,
    to_finished,
)


class TransitionLedger(ABC):
    """Implements the Ledger transitions on top of one atomic read-modify-write."""

    @abstractmethod
    def _update(self, task_id: str, change: Transition) -> TaskRecord | None:
        """Apply `change` atomically; the changed record, or None if nothing changed."""

    @abstractmethod
    def intend(self, record: TaskRecord) -> TaskRecord:
        """Store `record` as INTENDED unless its key exists; return the stored record."""

    @abstractmethod
    def get(self, task_id: str) -> TaskRecord | None:
        """The record for `task_id`, or None."""

    async def aintend(self, record: TaskRecord) -> TaskRecord:
        """`intend` from the event loop."""
        return await asyncio.to_thread(self.intend, record)

    async def aget(self, task_id: str) -> TaskRecord | None:
        """`get` from the event loop."""
        return await asyncio.to_thread(self.get, task_id)

    @abstractmethod
    def for_thread(self, thread_id: str) -> list[TaskRecord]:
        """Every record of one thread, oldest first."""

    async def afor_thread(self, thread_id: str) -> list[TaskRecord]:
        """`for_thread` from the event loop."""
        return await asyncio.to_thread(self.for_thread, thread_id)

    async def _aupdate(self, task_id: str, change: Transition) -> TaskRecord | None:
        """`_update` from the event loop."""
        return await asyncio.to_thread(self._update, task_id, change)

    def mark_dispatched(self, task_id: str) -> None:
        """INTENDED → DISPATCHED (no-op from any other state)."""
        self._update(task_id, to_dispatched)

    def start_attempt(self, task_id: str, first_only: bool = False) -> int:
        """Count one more execution by a worker; the new count, 0 if nothing was counted.

        With `first_only` nothing is counted when an execution already started.
        """
        record = self._update(task_id, count_first_attempt if first_only else count_attempt)
        return record.attempts if record else 0

    def finish(
        self, task_id: str, status: TaskStatus, result: Any = None, error: str | None = None
    ) -> bool:
        """Store the outcome if none is stored yet (first write wins); True if this one won."""
        changed = self._update(task_id, lambda record: to_finished(record, status, result, error))
        return changed is not None

    async def amark_dispatched(self, task_id: str) -> None:
        """`mark_dispatched` from the event loop."""
        await self._aupdate(task_id, to_dispatched)

    async def afinish(
        self, task_id: str, status: TaskStatus, result: Any = None, error: str | None = None
    ) -> bool:
        """`finish` from the event loop."""
        changed = await self._aupdate(
            task_id, lambda record: to_finished(record, status, result, error)
        )
        return changed is not None

    def mark_applied(self, task_ids: Iterable[str]) -> None:
        """COMPLETED | FAILED → APPLIED once the thread has taken the outcome in."""
        for task_id in task_ids:
            self._update(task_id, to_applied)

    async def amark_applied(self, task_ids: Iterable[str]) -> None:
        """`mark_applied` from the event loop."""
        await asyncio.gather(*(self._aupdate(task_id, to_applied) for task_id in task_ids))
