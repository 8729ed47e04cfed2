"""Automatic resumes: a thread whose background calls finished goes on by itself.

Under the thread's lock, the tasks of the calls whose outcomes are stored are woken
(`bridge/resume.py`: a resume names each call's own interrupt, and the call reads its outcome
from the ledger), in a run of its own: recorded and leased like any run, so another replica
finishes it if this one dies, its events on the thread's stream. Outcomes the thread no longer
waits for (it took them in before a crash, or its tool will read them from the ledger when it
re-runs) are marked APPLIED.

A resume woken by a callback or the sweeper claims the thread like any run
(`RunStore.claim`), and only then reads which outcomes are ready: another run (a client's, or
a resume in another process) may take them in until the claim is held. A thread another run
holds is left to that run, which looks for stored outcomes once it has let the thread go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from langgraph.types import StateSnapshot

from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.resume import ready_calls, settle_unawaited, wake_command
from graphrelay.server.checkpoints import thread_config
from graphrelay.server.ports import Graph, RunEvents, ThreadLocks
from graphrelay.server.records import RunCommand, RunOptions, RunRecord, ThreadStatus
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
        """Under the thread's lock, resume it with every stored outcome it waits for, each
        resume claiming the thread first; a thread another run holds is left to that run."""
        thread = await self.store.get_thread(thread_id)
        if thread is None or thread.graph_id is None:
            log.warning("task finished for unknown thread %s; nothing to resume", thread_id)
            return
        async with self.locks.hold(thread_id):
            if not await self.store.thread_exists(thread_id):  # deleted while we waited
                return
            try:
                state, held = await self._resume_all(thread.graph_id, thread_id, claim=True)
                if not held:
                    return  # another run holds the thread: it resumes it once it ends
                await settle_unawaited(state, self.ledger, thread_id)
            except Exception:
                log.exception("resuming thread %s failed", thread_id)
                return
            # A run of a process that died is still the thread's until a replica takes it
            # over and ends it: the thread stays busy, even if its state waits on nothing.
            await self.store.settle_thread(thread_id, status_of(state))

    async def resume_ready(self, graph_id: str, thread_id: str) -> StateSnapshot:
        """Resume with stored outcomes until none is left; the thread's state then. The
        caller holds the thread's lock and its claim (a run of its own)."""
        state, _ = await self._resume_all(graph_id, thread_id, claim=False)
        return state

    async def _resume_all(
        self, graph_id: str, thread_id: str, *, claim: bool
    ) -> tuple[StateSnapshot, bool]:
        """Resume with stored outcomes until none is left (with `claim`, each resume claims
        the thread first); the thread's state then, and False if another run held it."""
        graph = self.graph_for(graph_id)
        woken: Mapping[str, str] = {}
        while True:
            state = await graph.aget_state(thread_config(thread_id))
            ready = await ready_calls(state, self.ledger)
            if not ready:
                return state, True
            if ready == woken:
                # Woken and still waiting: a graph that swallows the re-run's interrupt (or a
                # store that lost the outcome) must not make this loop forever.
                log.error("thread %s still waits on %s after a resume; left interrupted",
                          thread_id, sorted(ready.values()))  # fmt: skip
                return state, True
            if not await self._resume_run(graph_id, thread_id, ready, claim=claim):
                return state, False
            woken = ready

    async def mark_applied(self, run: RunRecord) -> None:
        """A resume run's outcomes are in the thread now (also when another replica began
        it)."""
        if run.applies:
            await self.ledger.amark_applied(run.applies)

    async def _resume_run(
        self, graph_id: str, thread_id: str, ready: Mapping[str, str], *, claim: bool
    ) -> bool:
        """One resume, recorded and leased like any run; its events go to the thread's stream.
        With `claim`, it claims the thread first and takes in what is ready then: False if
        another run holds the thread. Raises if it fails."""
        run = RunRecord(thread_id=thread_id, assistant_id=graph_id,
                        metadata={"resumed_by": RESUMED_BY})  # fmt: skip
        await self.replicas.grant(run.run_id)  # before the claim: a claim is never unleased
        try:
            run.metadata["executed_by"] = self.replicas.owner
            if claim:
                claimed = await self._claim(run)
                if claimed is None:
                    return False
                ready = claimed
            if not ready:
                return True  # another run took the outcomes in before the claim
            _take_in(run, ready)
            log.info("resuming thread %s with %s", thread_id, run.applies)
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
            # A resume that holds the claim itself gives the thread its status as it lets it go.
            await self.statuses.end(run, "success", await self._status_now(run) if claim else None)
        finally:
            await self.replicas.release(run.run_id)
        return True

    async def _claim(self, run: RunRecord) -> dict[str, str] | None:
        """Claim the thread for the resume `run`, then read what is ready: None if another run
        holds the thread; nothing ready (another run took it in first): the claim dropped."""
        run.status = "running"
        if not (await self.store.claim(run, if_interrupted="allow")).claimed:
            return None
        state = await self.graph_for(run.assistant_id).aget_state(thread_config(run.thread_id))
        ready = await ready_calls(state, self.ledger)
        if not ready:
            await self.store.drop_claim(run, status_of(state))
        return ready

    async def _status_now(self, run: RunRecord) -> ThreadStatus:
        state = await self.graph_for(run.assistant_id).aget_state(thread_config(run.thread_id))
        return status_of(state)


def _take_in(run: RunRecord, ready: Mapping[str, str]) -> None:
    """Make `run` the resume that wakes the `ready` calls (interrupt id → task id)."""
    run.applies = list(ready.values())
    run.metadata["task_ids"] = run.applies
    run.options = RunOptions(command=RunCommand(resume=wake_command(ready).resume))
