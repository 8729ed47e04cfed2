"""Runs graphs on threads inside the API process, and resumes them when tasks finish.

Every graph call on a thread happens under that thread's lock. After any call stops, the
executor looks for outcomes that are already stored (a callback may have come before the
interrupt was checkpointed) and resumes with them before letting the lock go.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

import orjson
from fastapi.encoders import jsonable_encoder
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, StateSnapshot, StreamMode

from graphrelay.api.events import RunEvents, thread_channel, to_json
from graphrelay.api.leases import RunLeases
from graphrelay.api.records import RunRecord, RunStatus, ThreadRecord, ThreadStatus, now
from graphrelay.api.store import RunStore
from graphrelay.bridge.resume import pending_task_ids, settle_unawaited
from graphrelay.crash import crash_point
from graphrelay.orchestrator.registry import Graph
from graphrelay.ports import Ledger, ThreadLocks

log = logging.getLogger(__name__)

T = TypeVar("T")
STOP_WAIT = 10.0  # how long a stop waits for the replica that executes the run
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
    ) -> None:
        self.graphs = graphs
        self.ledger = ledger
        self.locks = locks
        self.store = store
        self.leases = leases
        self.events = events
        self.lease_seconds = lease_seconds
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._tasks: set[asyncio.Task[Any]] = set()
        # Runs executing here: the record (changed in place) and the task, whose result is
        # the thread's state when the run ended well.
        self._runs: dict[str, tuple[RunRecord, asyncio.Task[StateSnapshot | None]]] = {}
        self._leased: set[str] = set()  # runs whose lease this process renews
        self.webhook_sender: WebhookSender | None = None
        events.on_stop = self._stop_requested

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coroutine` as a task that `drain` waits for."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start(
        self,
        run: RunRecord,
        thread: ThreadRecord,
        graph_input: Any,
        checkpoint_id: str | None = None,
    ) -> None:
        """Record `run` and its thread (busy), take the run's lease, and execute it in the
        background (from `checkpoint_id`, forking, when given).

        Returns as soon as the run is scheduled, before it can publish any event.
        """
        await asyncio.gather(
            self.store.start_run(thread, run),
            self.leases.grant(run.run_id, self.owner, self.lease_seconds),
        )
        self._track(run, self.spawn(self._execute(run, graph_input, checkpoint_id)))

    def _track(self, run: RunRecord, task: asyncio.Task[StateSnapshot | None]) -> None:
        self._runs[run.run_id] = run, task
        self._leased.add(run.run_id)
        task.add_done_callback(lambda _: self._runs.pop(run.run_id, None))

    async def keep_leases(self, interval: float) -> None:
        """Forever: renew the leases of this process's runs; take over runs whose lease ran out."""
        while True:
            await asyncio.sleep(interval)
            try:
                for run_id in list(self._leased):
                    await self.leases.renew(run_id, self.owner, self.lease_seconds)
                await self.take_over_expired()
            except Exception:  # the store may be briefly away; try again next round
                log.exception("lease upkeep failed")

    async def take_over_expired(self) -> list[str]:
        """Claim every run whose lease ran out and carry it on here; the runs taken."""
        taken = []
        for run_id in await self.leases.expired():
            if await self.leases.claim(run_id, self.owner, self.lease_seconds):
                await self._take_over(run_id)
                taken.append(run_id)
        return taken

    async def _take_over(self, run_id: str) -> None:
        """Carry on a run whose process died: from its last checkpoint, or from its input."""
        run = await self.store.get_run(run_id)
        if run is None or run.status not in ("pending", "running"):
            await self.leases.release(run_id)
            return
        graph_input = None if await self._progressed(run) else graph_input_of(run.kwargs)
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
            if stored is None or stored.status not in ("pending", "running"):
                return stored, None
            await asyncio.sleep(poll)

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
        if run_id not in await self.leases.expired():
            return False
        if not await self.leases.claim(run_id, self.owner, self.lease_seconds):
            return False  # another replica took it over just now
        try:
            run = await self.store.get_run(run_id)
            if run is not None and run.status in ("pending", "running"):
                await self._set_run(run, "interrupted", await self._status_now(run))
                self._finish(run, "interrupted")
        finally:
            await self.leases.release(run_id)
        return True

    def wake(self, thread_id: str) -> None:
        """A background call of `thread_id` finished: resume it in the background."""
        self.spawn(self.resume_thread(thread_id))

    async def drain(self) -> None:
        """Wait for every run and resume under way (used at shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def graph_for(self, graph_id: str) -> Graph:
        """The served graph named `graph_id`."""
        return self.graphs[graph_id]

    async def _execute(
        self, run: RunRecord, graph_input: Any, checkpoint_id: str | None
    ) -> StateSnapshot | None:
        config = thread_config(run.thread_id, run.run_id)
        if checkpoint_id:
            config["configurable"]["checkpoint_id"] = checkpoint_id
        try:
            async with self.locks.hold(run.thread_id):
                return await self._run_locked(run, graph_input, config)
        except asyncio.CancelledError:
            if run.status == "pending":  # cancelled before it began (waiting for the lock)
                await self._set_run(run, "interrupted", await self._status_now(run))
                self._finish(run, "interrupted")
            raise
        finally:
            self._leased.discard(run.run_id)
            # The record is final already: a lease left behind only makes another replica
            # find the run ended and drop the lease, so nobody waits for this write.
            self.spawn(self.leases.release(run.run_id))

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
            await self._set_run(run, "running", "busy")  # busy again, if it was enqueued
            await self._stream(graph, graph_input, config, run)
            crash_point("after_interrupt_checkpoint")
            await self._mark_applied(run)
            state = await self._resume_ready(run.assistant_id, run.thread_id)
        except asyncio.CancelledError:
            await self._set_run(run, "interrupted", await self._status_now(run))
            self._finish(run, "interrupted")
            raise
        except Exception as exc:
            log.exception("run %s failed", run.run_id)
            run.error = f"{type(exc).__name__}: {exc}"
            error = {"error": type(exc).__name__, "message": str(exc)}
            self.events.publish(run.run_id, "error", error, keep=resumable(run))
            await self._set_run(run, "error", "error")
            await self._announce(run)
            return None
        await self._set_run(run, "success", status_of(state))
        self._finish(run, "success")
        await self._announce(run)
        return state

    async def _mark_applied(self, run: RunRecord) -> None:
        """A resume run's outcomes are in the thread now (also when another replica began it)."""
        if run.metadata.get("resumed_by") == "background_tasks":
            await self.ledger.amark_applied(run.metadata["task_ids"])

    async def _announce(self, run: RunRecord) -> None:
        """Send the run's completion webhook, if it asked for one."""
        url = run.kwargs.get("webhook")
        if url and self.webhook_sender is not None:
            snapshot = await self.graph_for(run.assistant_id).aget_state(
                thread_config(run.thread_id)
            )
            payload = {**run.model_dump(mode="json"), "values": jsonable_encoder(snapshot.values)}
            self.spawn(self.webhook_sender(str(url), run.run_id, payload))

    async def _stream(
        self, graph: Graph, graph_input: Any, config: RunnableConfig, run: RunRecord
    ) -> None:
        """Run the graph, publishing each chunk in the modes the run asked for."""
        modes = stream_modes(run.kwargs.get("stream_mode"))
        subgraphs = bool(run.kwargs.get("stream_subgraphs"))
        keep, on_thread = resumable(run), thread_channel(run.thread_id)
        part: Any
        async for part in graph.astream(
            graph_input, config, stream_mode=[graph_mode(m) for m in modes], subgraphs=subgraphs
        ):
            namespace: tuple[str, ...] = part[0] if subgraphs else ()
            mode, chunk = part[-2], part[-1]
            if keep or self.events.wanted(run.run_id) or self.events.wanted(on_thread):
                # Encoded once for every channel and subscriber.
                name, data = event_name(mode, namespace), orjson.Fragment(to_json(chunk))
                self.events.publish(run.run_id, name, data, keep=keep)
                self.events.publish(on_thread, name, data)

    async def resume_thread(self, thread_id: str) -> None:
        """Under the thread's lock, resume it with every stored outcome it waits for.

        Outcomes the thread no longer waits for (it took them in before a crash, or its tool
        will read them from the ledger when it re-runs) are marked APPLIED.
        """
        thread = await self.store.get_thread(thread_id)
        if thread is None or thread.graph_id is None:
            log.warning("task finished for unknown thread %s; nothing to resume", thread_id)
            return
        async with self.locks.hold(thread_id):
            try:
                state = await self._resume_ready(thread.graph_id, thread_id)
                await settle_unawaited(state, self.ledger, thread_id)
            except Exception:
                log.exception("resuming thread %s failed", thread_id)
                return
            # A run of a process that died is still the thread's until a replica takes it
            # over and ends it: the thread stays busy, even if its state waits on nothing.
            if not await self.store.active_runs(thread_id):
                await self.store.set_thread_status(thread_id, status_of(state))

    async def _resume_ready(self, graph_id: str, thread_id: str) -> StateSnapshot:
        """Resume with stored outcomes until none is left; the thread's state then. The
        caller holds the thread's lock."""
        graph = self.graph_for(graph_id)
        while True:
            state = await graph.aget_state(thread_config(thread_id))
            ready = await self._ready(state)
            if not ready:
                return state
            await self._resume_run(graph_id, thread_id, ready)

    async def _ready(self, state: StateSnapshot) -> dict[str, Any]:
        """Interrupt id → outcome for the pending background calls whose outcome is stored."""
        pending = pending_task_ids(state.interrupts)
        records = await asyncio.gather(*(self.ledger.aget(task_id) for task_id in pending.values()))
        return {
            interrupt_id: record.outcome().model_dump()
            for interrupt_id, record in zip(pending, records, strict=True)
            if record is not None and record.finished
        }

    async def _resume_run(self, graph_id: str, thread_id: str, ready: dict[str, Any]) -> None:
        """One resume, recorded and leased like any run (another replica finishes it if this
        one dies); its events go to the thread's stream. Raises if it fails."""
        run = RunRecord(
            thread_id=thread_id,
            assistant_id=graph_id,
            metadata={"resumed_by": "background_tasks", "task_ids": _task_ids(ready)},
            kwargs={"command": {"resume": ready}},
        )
        log.info("resuming thread %s with %s", thread_id, _task_ids(ready))
        await self.leases.grant(run.run_id, self.owner, self.lease_seconds)
        self._leased.add(run.run_id)
        try:
            run.metadata["executed_by"] = self.owner
            await self._set_run(run, "running", "busy")
            graph, config = self.graph_for(graph_id), thread_config(thread_id, run.run_id)
            try:
                await self._stream(graph, Command(resume=ready), config, run)
                crash_point("mid_resume")
                await self._mark_applied(run)
            except asyncio.CancelledError:
                await self._set_run(run, "interrupted")
                self._finish(run, "interrupted")
                raise
            except Exception as exc:
                run.error = f"{type(exc).__name__}: {exc}"
                await self._set_run(run, "error", "error")
                self._finish(run, "error")
                raise
            await self._set_run(run, "success")
            self._finish(run, "success")
        finally:
            self._leased.discard(run.run_id)
            await self.leases.release(run.run_id)

    def _finish(self, run: RunRecord, status: RunStatus) -> None:
        """Send the run's `end` event (kept if the run's stream is resumable)."""
        self.events.finish(run.run_id, status, keep=resumable(run))

    async def settle(self, graph_id: str, thread_id: str) -> None:
        """Set the thread's status from its latest state."""
        state = await self.graph_for(graph_id).aget_state(thread_config(thread_id))
        await self.store.set_thread_status(thread_id, status_of(state))

    async def _status_now(self, run: RunRecord) -> ThreadStatus:
        state = await self.graph_for(run.assistant_id).aget_state(thread_config(run.thread_id))
        return status_of(state)

    async def _set_run(
        self, run: RunRecord, status: RunStatus, thread_status: ThreadStatus | None = None
    ) -> None:
        run.status, run.updated_at = status, now()
        await self.store.put_run(run, thread_status)


def status_of(state: StateSnapshot) -> ThreadStatus:
    """A thread's status when no run is on it: waiting on interrupts, or idle."""
    return "interrupted" if state.interrupts else "idle"


STREAM_MODES = ("values", "updates", "messages-tuple", "custom", "debug")


def stream_modes(requested: Any) -> list[str]:
    """The SDK's `stream_mode` (a name or a list) as a list; `values` when absent."""
    if requested is None:
        return ["values"]
    return [requested] if isinstance(requested, str) else list(requested)


def graph_mode(sdk_mode: str) -> StreamMode:
    """LangGraph's name for an SDK stream mode."""
    if sdk_mode == "messages-tuple":
        return "messages"
    if sdk_mode not in STREAM_MODES:
        raise ValueError(f"unknown stream mode {sdk_mode!r}; use one of {STREAM_MODES}")
    return sdk_mode  # type: ignore[return-value]


def event_name(mode: str, namespace: tuple[str, ...]) -> str:
    """The SSE event name: the mode, then `|`-joined subgraph namespace if any."""
    return "|".join([mode, *namespace])


def resumable(run: RunRecord) -> bool:
    """Whether the run keeps its events for clients that resume its stream."""
    return bool(run.kwargs.get("stream_resumable"))


def graph_input_of(kwargs: Mapping[str, Any]) -> Any:
    """What a run feeds the graph: its input, or its command as a LangGraph `Command`."""
    command = kwargs.get("command")
    if command is not None:
        return Command(**{k: v for k, v in command.items() if v is not None})
    return kwargs.get("input")


def thread_config(thread_id: str, run_id: str | None = None) -> RunnableConfig:
    """The config that addresses a thread's latest checkpoint (and tags what a run writes)."""
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if run_id is not None:
        configurable["run_id"] = run_id  # copied into checkpoint metadata: delete_for_runs
    return {"configurable": configurable}


def _task_ids(ready: Mapping[str, Any]) -> list[str]:
    return [outcome["task_id"] for outcome in ready.values()]
