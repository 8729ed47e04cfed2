"""Runs claim their thread in the executor: two processes that share the run store (SQLite)
but no thread lock, as the embedded profile's API and sweeper do. The same answer twice at
once starts one run; a queued run waits for the run another process holds; a resume woken in
another process while a run holds the thread is refused, and the holder takes the outcome in
once it has let the thread go."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphInterrupt
from langgraph.graph import START, StateGraph
from langgraph.types import Interrupt, interrupt

from graphrelay.backends.memory import LocalEvents, LocalThreadLocks
from graphrelay.backends.sqlite.documents import SqliteDocuments
from graphrelay.backends.sqlite.leases import SqliteLeases
from graphrelay.backends.sqlite.ledger import SqliteLedger
from graphrelay.bridge.calls import PENDING_INTERRUPT_TYPE, CallRecord, CallStatus, wake_id
from graphrelay.bridge.ledger import Ledger
from graphrelay.server.executor import RunExecutor
from graphrelay.server.ports import Graph
from graphrelay.server.records import RunCommand, RunOptions, RunRecord, ThreadRecord
from graphrelay.server.store import RunStore

TASK = "gr-task"


class Steps(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def _payment() -> Graph:
    """Pays (logs `paid`) after two "yes"; prepares the payment between the questions, so a
    copy of the first answer sent at once finds that answer's run still under way."""

    async def pay(state: Steps) -> dict[str, Any]:
        if interrupt("send the payment?") != "yes":
            return {"log": ["not paid"]}
        await asyncio.sleep(0.2)
        if interrupt("are you sure?") != "yes":
            return {"log": ["not paid"]}
        return {"log": ["paid"]}

    builder = StateGraph(Steps)
    builder.add_node("pay", pay)
    builder.add_edge(START, "pay")
    return builder.compile(checkpointer=InMemorySaver())


class Gated:
    """A graph whose node notes `start`, waits for `gate`, then notes `end`."""

    def __init__(self) -> None:
        self.gate, self.started = asyncio.Event(), asyncio.Event()
        self.order: list[str] = []
        builder = StateGraph(Steps)
        builder.add_node("work", self._work)
        builder.add_edge(START, "work")
        self.graph: Graph = builder.compile(checkpointer=InMemorySaver())

    async def _work(self, state: Steps) -> dict[str, Any]:
        self.order.append("start")
        self.started.set()
        await self.gate.wait()
        self.order.append("end")
        return {"log": ["worked"]}


def _background(tmp_path: Path) -> Graph:
    """Waits on one background call, as the bridge's tool does (an interrupt of the call's
    own id until the ledger holds its outcome), and logs its outcome."""
    ledger = Ledger(SqliteLedger(tmp_path / "ledger.sqlite"))

    def call(state: Steps) -> dict[str, Any]:
        record = ledger.get(TASK)
        if record is None or not record.finished:
            pending = {"type": PENDING_INTERRUPT_TYPE, "task_id": TASK}
            raise GraphInterrupt((Interrupt(value=pending, id=wake_id(TASK)),))
        return {"log": [str(record.result)]}

    builder = StateGraph(Steps)
    builder.add_node("call", call)
    builder.add_edge(START, "call")
    return builder.compile(checkpointer=InMemorySaver())


def _processes(tmp_path: Path, graph: Graph) -> tuple[RunExecutor, RunExecutor]:
    """Two executors over one run store and ledger, each with thread locks of its own."""

    def executor() -> RunExecutor:
        return RunExecutor(
            {"g": graph},
            Ledger(SqliteLedger(tmp_path / "ledger.sqlite")),
            LocalThreadLocks(),
            RunStore(SqliteDocuments(tmp_path / "runs.sqlite")),
            SqliteLeases(tmp_path / "runs.sqlite"),
            LocalEvents(),
        )

    return executor(), executor()


async def _thread(executor: RunExecutor) -> str:
    thread = ThreadRecord()
    await executor.store.put_thread(thread)
    return thread.thread_id


def _run(thread_id: str, **options: Any) -> RunRecord:
    return RunRecord(thread_id=thread_id, assistant_id="g", options=RunOptions(**options))


async def test_the_same_answer_twice_at_once_starts_one_run(tmp_path: Path) -> None:
    first, second = _processes(tmp_path, _payment())
    thread_id = await _thread(first)
    assert (await first.start(_run(thread_id, input={}))).claimed
    await first.drain()
    yes = RunCommand(resume="yes")

    claims = await asyncio.gather(
        first.start(_run(thread_id, command=yes), if_interrupted="allow"),
        second.start(_run(thread_id, command=yes), if_interrupted="allow"),
    )
    await asyncio.gather(first.drain(), second.drain())

    assert sorted(claim.refused or "claimed" for claim in claims) == ["busy", "claimed"]
    state = await first.graphs["g"].aget_state({"configurable": {"thread_id": thread_id}})
    assert [item.value for item in state.interrupts] == ["are you sure?"]
    assert "paid" not in state.values.get("log", [])


async def test_a_queued_run_waits_for_the_run_another_process_holds(tmp_path: Path) -> None:
    gated = Gated()
    first, second = _processes(tmp_path, gated.graph)
    thread_id = await _thread(first)
    assert (await first.start(_run(thread_id, input={}))).claimed
    await gated.started.wait()

    queued = await second.start(_run(thread_id, input={}), if_busy="queue")
    await asyncio.sleep(0.3)  # the queued run's chance to start too early, if it would
    gated.gate.set()
    await asyncio.gather(first.drain(), second.drain())

    assert queued.claimed
    assert gated.order == ["start", "end", "start", "end"]


async def test_a_resume_refused_while_a_run_holds_the_thread_is_taken_in_after_it(
    tmp_path: Path,
) -> None:
    api, sweeper = _processes(tmp_path, _background(tmp_path))
    thread_id = await _thread(api)
    original = api.resumes.resume_ready

    async def then_the_outcome_arrives(graph_id: str, thread: str) -> Any:
        state = await original(graph_id, thread)  # the run's own look: nothing is ready yet
        record = CallRecord(task_id=TASK, thread_id=thread, tool="t", queue="io")
        await api.ledger.aintend(record)
        await api.ledger.afinish(TASK, CallStatus.COMPLETED, "the outcome")
        await sweeper.resume_thread(thread)  # the run still holds the thread: refused
        return state

    api.resumes.resume_ready = then_the_outcome_arrives  # type: ignore[method-assign]
    assert (await api.start(_run(thread_id, input={}))).claimed
    await api.drain()
    api.resumes.resume_ready = original  # type: ignore[method-assign]
    await api.drain()  # the look once the run let the thread go
    await sweeper.drain()

    runs = await api.store.runs_of(thread_id)
    resumes = [run for run in runs if run.applies == [TASK]]
    assert [run.metadata["executed_by"] for run in resumes] == [api.owner]
    state = await api.graphs["g"].aget_state({"configurable": {"thread_id": thread_id}})
    assert state.values["log"] == ["the outcome"]
    assert (await api.store.get_thread(thread_id)).status == "idle"  # type: ignore[union-attr]
