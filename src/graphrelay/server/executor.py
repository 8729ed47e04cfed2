"""Runs graphs on threads inside an API process: a run's life from start to end, its stops,
and runs taken over from replicas that died.

A run starts only by claiming its thread (`RunStore.claim`: the thread's state checked and the
run written in one atomic step across replicas); every graph call on a thread then happens
under that thread's lock. After any run stops, the executor resumes the thread with outcomes
that are already stored (a callback may have come before the interrupt was checkpointed)
before letting the lock go (`resumes.py`), and looks once more after it has let the thread go:
a resume woken while the run held the thread was refused, and left to it. Which process
executes which run is kept by leases (`replicas.py`); statuses by `status.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

from fastapi.encoders import jsonable_encoder
from langchain_core.runnables import RunnableConfig
from langgraph.types import StateSnapshot

from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.resume import ready_calls
from graphrelay.bridge.services import BridgeServices, bridge_services
from graphrelay.bridge.sweeper import REPAIRS
from graphrelay.server.checkpoints import thread_config
from graphrelay.server.ports import Graph, RunEvents, RunLeases, ThreadLocks
from graphrelay.server.records import ACTIVE, RunRecord
from graphrelay.server.replicas import Replicas
from graphrelay.server.resumes import Resumes
from graphrelay.server.status import RunStatuses, status_of
from graphrelay.server.store import Claim, IfBusy, IfInterrupted, RunStore
from graphrelay.server.streaming import stream_graph
from graphrelay.testing.crash import crash_point

log = logging.getLogger(__name__)

T = TypeVar("T")
STOP_WAIT = 10.0  # how long a stop waits for the replica that executes the run
MAX_TAKE_OVERS = 5  # failed take-overs of one run before it is ended `error`
WebhookSender = Callable[[str, str, dict[str, Any]], Coroutine[Any, Any, None]]


class RunExecutor:
    """Starts runs as asyncio tasks and keeps each thread to one graph call at a time."""

    def __init__(
        self,
        graphs: Mapping[str, Graph],
        ledger: Ledger,
        locks: ThreadLocks,
        store: RunStore,
        leases: RunLeases,
        events: RunEvents,
        lease_seconds: float = 15.0,
        bridge: BridgeServices | None = None,
    ) -> None:
        self.graphs = graphs
        self.ledger = ledger
        self.locks = locks
        self.store = store
        self.leases = leases
        self.events = events
        self.bridge = bridge
        self.replicas = Replicas(leases, lease_seconds)
        self.statuses = RunStatuses(store, events)
        self.resumes = Resumes(self.graph_for, ledger, locks, store, events, self.replicas,
                               self._graph_call)  # fmt: skip
        self.webhook_sender: WebhookSender | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Runs executing here: the record (changed in place) and the task, whose result is
        # the thread's state when the run ended well.
        self._runs: dict[str, tuple[RunRecord, asyncio.Task[StateSnapshot | None]]] = {}
        events.on_stop = self._stop_requested

    @property
    def owner(self) -> str:
        """This process's name on the leases it holds."""
        return self.replicas.owner

    def graph_for(self, graph_id: str) -> Graph:
        """The served graph named `graph_id`."""
        return self.graphs[graph_id]

    @contextlib.contextmanager
    def _graph_call(self) -> Iterator[None]:
        """Around every graph call: the bridge's services for the background tools it calls."""
        if self.bridge is None:
            yield
            return
        with bridge_services(self.bridge):
            yield

    # -- tasks ---------------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coroutine` as a task that `drain` waits for."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait for every run and resume under way (used at shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _track(self, run: RunRecord, task: asyncio.Task[StateSnapshot | None]) -> None:
        self._runs[run.run_id] = run, task
        self.replicas.hold(run.run_id)
        task.add_done_callback(lambda _: self._runs.pop(run.run_id, None))

    # -- starting, joining, waking ---------------------------------------------------------

    async def start(
        self,
        run: RunRecord,
        checkpoint_id: str | None = None,
        *,
        if_busy: IfBusy = "refuse",
        if_interrupted: IfInterrupted = "refuse",
    ) -> Claim:
        """Claim the run's thread for `run` (`RunStore.claim`, with `if_busy` and
        `if_interrupted`) and, if claimed, execute it in the background (from
        `checkpoint_id`, forking, when given); the claim.

        The run's lease is taken before the claim is written, so a process that dies right
        after leaves a run that a replica takes over and ends, never a thread busy forever.
        Returns as soon as the run is scheduled, before it can publish any event.
        """
        await self.leases.grant(run.run_id, self.owner, self.replicas.lease_seconds)
        claim = await self.store.claim(run, if_busy=if_busy, if_interrupted=if_interrupted)
        if not claim.claimed:
            await self.leases.release(run.run_id)
            return claim
        graph_input = run.options.graph_input()
        queued = bool(claim.active)
        self._track(run, self.spawn(self._execute(run, graph_input, checkpoint_id, queued)))
        return claim

    async def join(
        self, run_id: str, poll: float = 0.05
    ) -> tuple[RunRecord | None, StateSnapshot | None]:
        """Wait until the run stops (here or in another process); the final record, and the
        thread's state then if the run executed here and ended well."""
        local = self._runs.get(run_id)
        if local is not None:
            run, task = local
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is None:
                return run, task.result()
        while True:
            stored = await self.store.get_run(run_id)
            if stored is None or stored.status not in ACTIVE:
                return stored, None
            await asyncio.sleep(poll)

    def wake(self, thread_id: str) -> None:
        """A background call of `thread_id` finished: resume it in the background."""
        self.spawn(self.resume_thread(thread_id))

    async def resume_thread(self, thread_id: str) -> None:
        """Resume the thread with every stored outcome it waits for (see `Resumes`)."""
        await self.resumes.resume_thread(thread_id)

    async def settle(self, graph_id: str, thread_id: str) -> None:
        """Set the thread's status from its latest state, unless a run holds the thread."""
        state = await self.graph_for(graph_id).aget_state(thread_config(thread_id))
        await self.store.settle_thread(thread_id, status_of(state))

    # -- executing -------------------------------------------------------------------------

    async def _execute(
        self, run: RunRecord, graph_input: Any, checkpoint_id: str | None, queued: bool = False
    ) -> StateSnapshot | None:
        config = thread_config(run.thread_id, run.run_id)
        if checkpoint_id:
            config["configurable"]["checkpoint_id"] = checkpoint_id
        state: StateSnapshot | None = None
        try:
            if queued:
                await self._wait_turn(run)
            async with self.locks.hold(run.thread_id):
                state = await self._run_locked(run, graph_input, config)
                return state
        except asyncio.CancelledError:
            if run.status == "pending":  # cancelled before it began (waiting for the lock)
                await self.statuses.end(run, "interrupted", await self._status_now(run))
            raise
        finally:
            self.replicas.stop_renewing(run.run_id)
            # The record is final already: a lease left behind only makes another replica
            # find the run ended and drop the lease, so nobody waits for this write.
            self.spawn(self.leases.release(run.run_id))
            self.spawn(self._resume_if_ready(run, state))

    async def _wait_turn(self, run: RunRecord, poll: float = 0.05) -> None:
        """Wait until the runs that held the thread when `run` was queued behind them have
        ended, wherever they execute: runs of a thread go in the order they claimed it, and
        a process that shares no thread lock with this one (the embedded profile's sweeper)
        never runs at the same time."""
        while True:
            waiting = [active.run_id for active in await self.store.active_runs(run.thread_id)]
            if run.run_id not in waiting or waiting[0] == run.run_id:
                return
            await asyncio.sleep(poll)

    async def _resume_if_ready(self, run: RunRecord, state: StateSnapshot | None) -> None:
        """After `run` let its thread go: resume it with outcomes stored while the run held it
        (the resumes they woke were refused, and left to this run). `state`: the thread's
        state as the run left it, None to read it."""
        try:
            if state is None:
                state = await self.graph_for(run.assistant_id).aget_state(
                    thread_config(run.thread_id)
                )
            if await ready_calls(state, self.ledger):
                await self.resume_thread(run.thread_id)
        except Exception:  # the sweeper resumes it later
            log.exception("looking for outcomes after run %s failed", run.run_id)

    async def _run_locked(
        self, run: RunRecord, graph_input: Any, config: RunnableConfig
    ) -> StateSnapshot | None:
        """Run the graph once, then every resume whose outcome is already stored; the
        thread's state at the end, or None if the run failed. The caller holds the thread's
        lock and the run's lease."""
        graph = self.graph_for(run.assistant_id)
        run.metadata["executed_by"] = self.owner
        try:
            # Inside the try: a client that leaves at once may cancel the run right here.
            await self.statuses.set(run, "running", "busy")  # busy again, if it was enqueued
            with self._graph_call():
                await stream_graph(graph, graph_input, config, run, self.events)
            crash_point("after_interrupt_checkpoint")
            await self.resumes.mark_applied(run)
            state = await self.resumes.resume_ready(run.assistant_id, run.thread_id)
        except asyncio.CancelledError:
            await self.statuses.end(run, "interrupted", await self._status_now(run))
            raise
        except Exception as exc:
            log.exception("run %s failed", run.run_id)
            run.error = f"{type(exc).__name__}: {exc}"
            error = {"error": type(exc).__name__, "message": str(exc)}
            self.events.publish(run.run_id, "error", error, keep=run.resumable)
            await self.statuses.set(run, "error", "error")
            await self._announce(run)
            return None
        await self.statuses.end(run, "success", status_of(state))
        await self._announce(run)
        return state

    async def _announce(self, run: RunRecord) -> None:
        """Send the run's completion webhook, if it asked for one."""
        url = run.options.webhook
        if url and self.webhook_sender is not None:
            snapshot = await self.graph_for(run.assistant_id).aget_state(
                thread_config(run.thread_id)
            )
            payload = {**run.view().model_dump(mode="json"),
                       "values": jsonable_encoder(snapshot.values)}  # fmt: skip
            self.spawn(self.webhook_sender(str(url), run.run_id, payload))

    async def _status_now(self, run: RunRecord) -> Any:
        state = await self.graph_for(run.assistant_id).aget_state(thread_config(run.thread_id))
        return status_of(state)

    # -- stopping --------------------------------------------------------------------------

    async def cancel(self, run_id: str) -> bool:
        """Stop a run this process executes; True if it was running here."""
        local = self._runs.get(run_id)
        if local is None:
            return False
        _, task = local
        task.cancel()
        await asyncio.wait({task})
        return True

    async def stop(self, run_id: str, wait: float = STOP_WAIT) -> bool:
        """Stop a run wherever it executes; True once it has ended.

        A run of this process is cancelled here. A run whose lease ran out (its process died)
        is claimed and ended here. Any other is asked to stop on every replica, and awaited
        for up to `wait` seconds: False if none stopped it by then.
        """
        if await self.cancel(run_id):
            return True
        if await self._end_orphan(run_id):
            return True
        self.events.request_stop(run_id)
        try:
            await asyncio.wait_for(self.join(run_id), wait)
        except TimeoutError:
            return False
        return True

    def _stop_requested(self, run_id: str) -> None:
        """Another replica asks for `run_id` to stop: cancel it if it runs here."""
        if run_id in self._runs:
            log.info("run %s stopped at another replica's request", run_id)
            self.spawn(self.cancel(run_id))

    async def _end_orphan(self, run_id: str) -> bool:
        """End, as interrupted, a run whose lease ran out; True if it was one."""
        if run_id not in await self.replicas.expired():
            return False
        if not await self.replicas.claim(run_id):
            return False  # another replica took it over just now
        try:
            run = await self.store.get_run(run_id)
            if run is not None and run.status in ACTIVE:
                await self.statuses.end(run, "interrupted", await self._status_now(run))
        finally:
            await self.leases.release(run_id)
        return True

    # -- taking over -----------------------------------------------------------------------

    async def keep_leases(self, interval: float) -> None:
        """Forever: renew the leases of this process's runs (and, with a thread TTL, their
        records); take over runs whose lease ran out."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.replicas.renew()
                await self.store.keep_alive(self.replicas.held)
                await self.take_over_expired()
            except Exception:  # the store may be briefly away; try again next round
                log.exception("lease upkeep failed")

    async def take_over_expired(self) -> list[str]:
        """Claim every run whose lease ran out and carry it on here; the runs taken. One whose
        take-over raises does not hold the others (see `_take_over_failed`)."""
        taken = []
        for run_id in await self.replicas.expired():
            if await self.replicas.claim(run_id):
                try:
                    await self._take_over(run_id)
                except Exception as exc:
                    await self._take_over_failed(run_id, f"{type(exc).__name__}: {exc}")
                    continue
                taken.append(run_id)
        return taken

    async def _take_over_failed(self, run_id: str, reason: str) -> None:
        """Count a failed take-over on the run (its lease runs out again, for another try);
        at `MAX_TAKE_OVERS` end it `error` with the reason, and try no more."""
        log.warning("taking over run %s failed: %s", run_id, reason)
        run = await self.store.get_run(run_id)
        if run is None or run.status not in ACTIVE:
            await self.leases.release(run_id)
            return
        failures = int(run.metadata.get("take_over_failures", 0)) + 1
        run.metadata["take_over_failures"] = failures
        if failures < MAX_TAKE_OVERS:
            await self.store.put_run(run)
            return
        run.error = f"parked after {failures} failed take-overs: {reason}"
        log.error("run %s of thread %s %s", run_id, run.thread_id, run.error)
        await self.statuses.end(run, "error", "error")
        await self.leases.release(run_id)
        REPAIRS.labels("parked").inc()

    async def _take_over(self, run_id: str) -> None:
        """Carry on a run whose process died: from its last checkpoint, or from its input."""
        run = await self.store.get_run(run_id)
        if run is None or run.status not in ACTIVE:
            await self.leases.release(run_id)
            return
        graph_input = None if await self._progressed(run) else run.options.graph_input()
        run.metadata["taken_over_by"] = self.owner
        log.warning("taking over run %s of thread %s", run_id, run.thread_id)
        self._track(run, self.spawn(self._execute(run, graph_input, None)))

    async def _progressed(self, run: RunRecord) -> bool:
        """Whether the run checkpointed anything; later runs (say, a resume that a retried
        callback started) may have checkpointed since, so not just the latest counts."""
        history = self.graph_for(run.assistant_id).aget_state_history(
            thread_config(run.thread_id), filter={"run_id": run.run_id}, limit=1
        )
        async for _ in history:
            return True
        return False
