"""A run's status machine: `pending → running → success | error | interrupted`, written with
its thread's status in one store write, and the `end` event that closes the run's stream."""

from __future__ import annotations

from langgraph.types import StateSnapshot

from graphrelay.server.ports import RunEvents
from graphrelay.server.records import RunRecord, RunStatus, ThreadStatus, now
from graphrelay.server.store import RunStore


def status_of(state: StateSnapshot) -> ThreadStatus:
    """A thread's status when no run is on it: waiting on interrupts, or idle."""
    return "interrupted" if state.interrupts else "idle"


class RunStatuses:
    """Moves runs between statuses in the store, and ends their streams."""

    def __init__(self, store: RunStore, events: RunEvents) -> None:
        self.store = store
        self.events = events

    async def set(
        self, run: RunRecord, status: RunStatus, thread_status: ThreadStatus | None = None
    ) -> None:
        """Record `run` in `status` (and its thread in `thread_status`, in the same write)."""
        run.status, run.updated_at = status, now()
        await self.store.put_run(run, thread_status)

    def end_stream(self, run: RunRecord, status: RunStatus) -> None:
        """Send the run's `end` event (kept if the run's stream is resumable)."""
        self.events.finish(run.run_id, status, keep=run.resumable)

    async def end(
        self, run: RunRecord, status: RunStatus, thread_status: ThreadStatus | None = None
    ) -> None:
        """Record the run's final status, then end its stream."""
        await self.set(run, status, thread_status)
        self.end_stream(run, status)
