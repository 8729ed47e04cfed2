"""The bridge's ports: what it needs from storage, the broker and the wire back to the API.

`backends/` implements them (Redis, SQLite, Celery, signed webhooks); tests use fakes.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from graphrelay.bridge.calls import CallRecord, CallStatus, Transition
from graphrelay.bridge.messages import ProgressMessage


class LedgerStore(Protocol):
    """Durable call records shared by the API and every worker; each change atomic.

    The rules of the protocol (which change is allowed when) are `Ledger`'s, over this port:
    an adapter only stores, indexes and applies a `Transition` atomically.
    """

    def intend(self, record: CallRecord) -> CallRecord:
        """Store `record` unless its key exists; return the stored record."""
        ...

    def get(self, task_id: str) -> CallRecord | None:
        """The record for `task_id`, or None."""
        ...

    def update(self, task_id: str, change: Transition) -> CallRecord | None:
        """Apply `change` atomically; the changed record, or None if nothing changed."""
        ...

    def for_thread(self, thread_id: str) -> list[CallRecord]:
        """Every record of one thread, oldest first."""
        ...

    def stale(self, status: CallStatus, updated_before: float, limit: int) -> list[CallRecord]:
        """Up to `limit` records in `status` unchanged since `updated_before`, oldest first.

        Only the statuses a sweeper repairs (`SWEPT_STATUSES`) are indexed; asking for another
        raises ValueError.
        """
        ...

    def overdue(self, now: float, limit: int) -> list[CallRecord]:
        """Up to `limit` INTENDED or DISPATCHED records whose deadline is before `now`."""
        ...

    def abandoned(self, limit: int) -> list[CallRecord]:
        """Up to `limit` ABANDONED records of threads that still exist (parked by the
        sweeper), oldest change first."""
        ...

    def forget_thread(self, thread_id: str, keep: Collection[str]) -> None:
        """Remove every record of a thread and every index entry of them, except the records
        whose task ids are in `keep`: closed calls a worker may still run, which stay,
        unindexed, until their `forget_at`, for late workers to find closed."""
        ...

    def forget_expired(self, now: float) -> int:
        """Drop what outlived its thread's lifetime by `now`: index entries of expired records
        and kept records past their time; how many."""
        ...

    async def aintend(self, record: CallRecord) -> CallRecord:
        """`intend`, from an event loop."""
        ...

    async def aget(self, task_id: str) -> CallRecord | None:
        """`get`, from an event loop."""
        ...

    async def aupdate(self, task_id: str, change: Transition) -> CallRecord | None:
        """`update`, from an event loop."""
        ...

    async def afor_thread(self, thread_id: str) -> list[CallRecord]:
        """`for_thread`, from an event loop."""
        ...

    async def aforget_thread(self, thread_id: str, keep: Collection[str]) -> None:
        """`forget_thread`, from an event loop."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class Dispatcher(Protocol):
    """Publishes background calls to the workers."""

    def dispatch(self, record: CallRecord, callback_url: str | None) -> None:
        """Publish `record` with its key as task id; publishing the same key twice is safe."""
        ...

    def revoke(self, task_id: str) -> None:
        """Ask the workers to drop the call, and to stop it if they can."""
        ...


class Notifier(Protocol):
    """The worker's way back to the API: a finished call's outcome, and progress."""

    def notify(self, record: CallRecord, callback_url: str) -> None:
        """Deliver the outcome of `record` to the API, retrying until it is accepted."""
        ...

    def progress(self, report: ProgressMessage, callback_url: str) -> None:
        """Deliver a progress report, best effort (never raises)."""
        ...
