"""The bridge's resume routing in process, on LangGraph itself: whatever the graph's shape, a
call returns only its own outcome, the thread waits until every call is in, and a human's
answer reaches the human's question. The real background tool, ledger (SQLite) and wake
protocol; a recording dispatcher instead of a broker."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, Send, interrupt
from typing_extensions import TypedDict

from graphrelay import background_tool
from graphrelay.backends.sqlite.ledger import SqliteLedger
from graphrelay.bridge.calls import CallStatus, wake_id
from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.resume import pending_task_ids, ready_calls, wake_command
from graphrelay.bridge.services import BridgeServices, bridge_services
from tests.support.fakes import RecordingDispatcher


@background_tool(queue="io", name="routing_gate")
def gate(name: str) -> str:
    """Pass the gate `name` (the tests store each outcome themselves)."""
    return f"result-{name}"


class Gates(TypedDict, total=False):
    names: list[str]
    results: Annotated[dict[str, str], operator.or_]
    approved: Any


def _two_calls_message(state: MessagesState) -> dict[str, Any]:
    if any(m.type == "tool" for m in state["messages"]):
        return {"messages": [AIMessage(content="done")]}
    calls = [{"name": gate.name, "args": {"name": n}, "id": f"call_{n[0]}", "type": "tool_call"}
             for n in ("alpha", "beta")]  # fmt: skip
    return {"messages": [AIMessage(content="", tool_calls=calls)]}


def _toolnode() -> StateGraph[Any]:
    builder = StateGraph(MessagesState)
    builder.add_node("agent", _two_calls_message)
    builder.add_node("tools", ToolNode([gate.tool]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder


def toolnode_graph() -> Any:
    return _toolnode().compile(checkpointer=InMemorySaver())


def subgraph_graph() -> Any:
    inner = _toolnode().compile()
    builder = StateGraph(MessagesState)

    async def call_inner(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": (await inner.ainvoke(state, config))["messages"]}

    builder.add_node("outer", call_inner)
    builder.add_edge(START, "outer")
    return builder.compile(checkpointer=InMemorySaver())


def sequential_graph(human_after: bool = False) -> Any:
    async def work(state: Gates, config: RunnableConfig) -> dict[str, Any]:
        first = await gate.acall(config, call_id="first", name="alpha")
        second = await gate.acall(config, call_id="second", name="beta")
        approved = interrupt({"question": "ok?"}) if human_after else None
        return {"results": {"alpha": first, "beta": second}, "approved": approved}

    builder = StateGraph(Gates)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    return builder.compile(checkpointer=InMemorySaver())


def send_graph() -> Any:
    def fan(state: Gates) -> list[Send]:
        return [Send("one", {"names": [name]}) for name in ("alpha", "beta")]

    async def one(state: Gates, config: RunnableConfig) -> dict[str, Any]:
        name = state["names"][0]
        return {"results": {name: await gate.acall(config, call_id="gate", name=name)}}

    builder = StateGraph(Gates)
    builder.add_node("one", one)
    builder.add_conditional_edges(START, fan, ["one"])
    return builder.compile(checkpointer=InMemorySaver())


QUESTION = {"messages": [HumanMessage(content="go")]}
SHAPES = {
    "toolnode": (toolnode_graph, QUESTION),
    "subgraph": (subgraph_graph, QUESTION),
    "sequential": (sequential_graph, {}),
    "send": (send_graph, {}),
}
RIGHT = {"alpha": "result-alpha", "beta": "result-beta"}
CONFIG: Any = {"configurable": {"thread_id": "t1"}}


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[BridgeServices]:
    services = BridgeServices(
        ledger=Ledger(SqliteLedger(tmp_path / "ledger.sqlite")),
        dispatcher=RecordingDispatcher(),
        callback_url="http://127.0.0.1:1/internal/tasks/callback",
    )
    with bridge_services(services):
        yield services


def _finish(bridge: BridgeServices, name: str) -> None:
    """A worker stores the outcome of the open call for `name`."""
    [record] = [r for r in bridge.ledger.for_thread("t1") if r.args["name"] == name]
    bridge.ledger.finish(record.task_id, CallStatus.COMPLETED, result=f"result-{name}")


async def _resume_ready(graph: Any, bridge: BridgeServices) -> Any:
    """What the run engine does after a callback: wake every ready call until none is."""
    while True:
        state = await graph.aget_state(CONFIG)
        ready = await ready_calls(state, bridge.ledger)
        if not ready:
            return state
        await graph.ainvoke(wake_command(ready), CONFIG)


def _results(state: Any) -> dict[str, str]:
    if "results" in state.values:
        return dict(state.values["results"])
    messages = state.values["messages"]
    names = {c["id"]: c["args"]["name"] for m in messages if m.type == "ai" for c in m.tool_calls}
    return {names[m.tool_call_id]: m.content for m in messages if m.type == "tool"}


CASES = [(shape, order) for shape in SHAPES for order in ("alpha-first", "beta-first")
         if not (shape == "sequential" and order == "beta-first")]  # fmt: skip


@pytest.mark.parametrize(("shape", "first"), CASES)
def test_each_call_gets_its_own_outcome_and_the_thread_waits_for_all(
    bridge: BridgeServices, shape: str, first: str
) -> None:
    order = ("alpha", "beta") if first == "alpha-first" else ("beta", "alpha")
    build, graph_input = SHAPES[shape]
    graph = build()

    async def drive() -> tuple[list[bool], Any]:
        await graph.ainvoke(graph_input, CONFIG)
        waiting = []
        for name in order:
            await asyncio.sleep(0.05)  # ToolNode's async siblings may still be dispatching
            _finish(bridge, name)
            state = await _resume_ready(graph, bridge)
            waiting.append(bool(state.interrupts))
        return waiting, state

    waiting, state = asyncio.run(drive())

    assert waiting == [True, False]  # interrupted until the last call is in
    assert _results(state) == RIGHT
    dispatched = bridge.dispatcher.dispatched  # type: ignore[attr-defined]
    assert sorted(r.args["name"] for r in dispatched) == ["alpha", "beta"]


def test_pending_calls_interrupt_under_their_own_ids(bridge: BridgeServices) -> None:
    graph = send_graph()
    state = asyncio.run(_start(graph, {}))

    pending = pending_task_ids(state.interrupts)
    assert len(pending) == 2
    assert all(interrupt_id == wake_id(task_id) for interrupt_id, task_id in pending.items())


def test_a_humans_answer_reaches_the_humans_question(bridge: BridgeServices) -> None:
    graph = sequential_graph(human_after=True)

    async def drive() -> Any:
        await graph.ainvoke({}, CONFIG)
        for name in ("alpha", "beta"):
            _finish(bridge, name)
            state = await _resume_ready(graph, bridge)
        [question] = state.interrupts
        assert question.value == {"question": "ok?"}
        await graph.ainvoke(Command(resume={question.id: "yes"}), CONFIG)
        return await graph.aget_state(CONFIG)

    state = asyncio.run(drive())

    assert state.values["approved"] == "yes"
    assert state.values["results"] == RIGHT


async def _start(graph: Any, graph_input: Any) -> Any:
    await graph.ainvoke(graph_input, CONFIG)
    return await graph.aget_state(CONFIG)
