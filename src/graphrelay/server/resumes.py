"""Automatic resumes: a thread whose background calls finished goes on by itself.

Under the thread's lock, each ready outcome is applied to the interrupt that waits for it
(`bridge/resume.py`), in a run of its own: recorded and leased like any run, so another
replica finishes it if this one dies, its events on the thread's stream. Outcomes the thread no
longer waits for (it took them in before a crash, or its tool will read them from the ledger
when it re-runs) are marked APPLIED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from langgraph.types import StateSnapshot

from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.resume import ready_outcomes, settle_unawaited, task_ids_of
from graphrelay.server.checkpoints import thread_config
from graphrelay.server.ports import Graph, RunEvents, ThreadLocks
from graphrelay.server.records import RunCommand, RunOptions, RunRecord
from graphrelay.server.replicas import Replicas
from graphrelay.server.status import RunStatuses, status_of
from graphrelay.server.store import RunStore
from graphrelay.server.streaming import stream_graph
from graphrelay.testing.crash import crash_point

log = logging.getLogger(__name__)

RESUMED_BY = "background_tasks"  # `metadata.resumed_by` of an automatic resume run


class Resumes:
    """Resumes threads with the outcomes of their background calls."""

    def __init__(
        self,
        graph_for: Callable[[str], Graph],
        ledger: Ledger,
        locks: ThreadLocks,
        store: RunStore,
        events: RunEvents,
        replicas: Replicas,
        graph_call: Callable[[], contextlib.AbstractContextManager[Any]],
    ) -> None:
        self.graph_for = graph_for
        self.ledger = ledger
        self.locks = locks
        self.store = store
        self.events = events
        self.replicas = replicas
        self.statuses = RunStatuses(store, events)
        self.graph_call = graph_call  # what every graph call runs inside (the bridge's services)

    async def resume_thread(self, thread_id: str) -> None:
        """Under the thread's lock, resume it with every stored outcome it waits for."""
        thread = await self.store.get_thread(thread_id)
        if thread is None or thread.graph_id is None:
            log.warning("task finished for unknown thread %s; nothing to resume", thread_id)
            return
        async with self.locks.hold(thread_id):
            if not await self.store.thread_exists(thread_id):  # deleted while we waited
                return
            try:
                state = await self.resume_ready(thread.graph_id, thread_id)
                await settle_unawaited(state, self.ledger, thread_id)
            except Exception:
                log.exception("resuming thread %s failed", thread_id)
                return
            # A run of a process that died is still the thread's until a replica takes it
            # over and ends it: the thread stays busy, even if its state waits on nothing.
            if not await self.store.active_runs(thread_id):
                await self.store.set_thread_status(thread_id, status_of(state))

    async def resume_ready(self, graph_id: str, thread_id: str) -> StateSnapshot:
        """Resume with stored outcomes until none is left; the thread's state then. The
        caller holds the thread's lock."""
        graph = self.graph_for(graph_id)
        while True:
            state = await graph.aget_state(thread_config(thread_id))
            ready = await ready_outcomes(state, self.ledger)
            if not ready:
                return state
            await self._resume_run(graph_id, thread_id, ready)

    async def mark_applied(self, run: RunRecord) -> None:
        """A resume run's outcomes are in the thread now (also when another replica began
        it)."""
        if run.applies:
            await self.ledger.amark_applied(run.applies)

    async def _resume_run(self, graph_id: str, thread_id: str, ready: Mapping[str, Any]) -> None:
        """One resume, recorded and leased like any run; its events go to the thread's stream.
        Raises if it fails."""
        task_ids = task_ids_of(ready)
        run = RunRecord(
            thread_id=thread_id,
            assistant_id=graph_id,
            metadata={"resumed_by": RESUMED_BY, "task_ids": task_ids},
            options=RunOptions(command=RunCommand(resume=dict(ready))),
            applies=task_ids,
        )
        log.info("resuming thread %s with %s", thread_id, task_ids)
        await self.replicas.grant(run.run_id)
        try:
            run.metadata["executed_by"] = self.replicas.owner
            await self.statuses.set(run, "running", "busy")
            config = thread_config(thread_id, run.run_id)
            try:
                with self.graph_call():
                    graph = self.graph_for(graph_id)
                    await stream_graph(graph, run.options.graph_input(), config, run, self.events)
                crash_point("mid_resume")
                await self.mark_applied(run)
            except asyncio.CancelledError:
                await self.statuses.end(run, "interrupted")
                raise
            except Exception as exc:
                run.error = f"{type(exc).__name__}: {exc}"
                await self.statuses.end(run, "error", "error")
                raise
            await self.statuses.end(run, "success")
        finally:
            await self.replicas.release(run.run_id)
