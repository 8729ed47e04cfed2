"""The small protocols the core speaks through; adapters implement them per profile."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from graphrelay.bridge.records import TaskRecord, TaskStatus


class Ledger(Protocol):
    """Durable records of background calls, shared by the API and every worker."""

    def intend(self, record: TaskRecord) -> TaskRecord:
        """Store `record` as INTENDED unless its key exists; return the stored record."""
        ...

    def get(self, task_id: str) -> TaskRecord | None:
        """The record for `task_id`, or None."""
        ...

    def mark_dispatched(self, task_id: str) -> None:
        """INTENDED → DISPATCHED (no-op from any other state)."""
        ...

    def start_attempt(self, task_id: str, first_only: bool = False) -> int:
        """Count one more execution by a worker; the new count, 0 if nothing was counted.

        With `first_only` nothing is counted when an execution already started.
        """
        ...

    def finish(
        self, task_id: str, status: TaskStatus, result: Any = None, error: str | None = None
    ) -> bool:
        """Store the outcome if none is stored yet (first write wins); True if this one won."""
        ...

    def mark_applied(self, task_ids: Iterable[str]) -> None:
        """COMPLETED | FAILED → APPLIED once the thread has taken the outcome in."""
        ...

    def for_thread(self, thread_id: str) -> list[TaskRecord]:
        """Every record of one thread, oldest first."""
        ...

    # The same from the API's event loop:

    async def aintend(self, record: TaskRecord) -> TaskRecord:
        """`intend`, awaited."""
        ...

    async def aget(self, task_id: str) -> TaskRecord | None:
        """`get`, awaited."""
        ...

    async def amark_dispatched(self, task_id: str) -> None:
        """`mark_dispatched`, awaited."""
        ...

    async def afinish(
        self, task_id: str, status: TaskStatus, result: Any = None, error: str | None = None
    ) -> bool:
        """`finish`, awaited."""
        ...

    async def amark_applied(self, task_ids: Iterable[str]) -> None:
        """`mark_applied`, awaited."""
        ...

    async def afor_thread(self, thread_id: str) -> list[TaskRecord]:
        """`for_thread`, awaited."""
        ...

    def stale(self, status: TaskStatus, updated_before: float, limit: int) -> list[TaskRecord]:
        """Up to `limit` records in `status` unchanged since `updated_before`, oldest first.

        Only the statuses a sweeper repairs (INTENDED, DISPATCHED, COMPLETED, FAILED) are
        indexed; asking for another is an error.
        """
        ...

    def overdue(self, now: float, limit: int) -> list[TaskRecord]:
        """Up to `limit` INTENDED or DISPATCHED records whose deadline is before `now`."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class ThreadLocks(Protocol):
    """One holder per thread at a time, across every API process that shares the store."""

    def hold(self, thread_id: str) -> AbstractAsyncContextManager[None]:
        """Wait for the thread's lock and hold it for the `async with` block."""
        ...


class TaskDispatchPort(Protocol):
    """Publishes a background call to the data plane."""

    def dispatch(self, record: TaskRecord, callback_url: str | None) -> None:
        """Publish `record` with its key as task id; publishing the same key twice is safe."""
        ...

    def revoke(self, task_id: str) -> None:
        """Ask the workers to drop the call, and to stop it if they can."""
        ...


class TaskResumePort(Protocol):
    """How a finished task wakes its thread (the worker's side of the callback)."""

    def notify(self, record: TaskRecord, callback_url: str) -> None:
        """Deliver the outcome of `record` to the API, retrying until it is accepted."""
        ...
