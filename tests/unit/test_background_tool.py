"""The bridge protocol inside a real LangGraph agent, with a recording dispatcher."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graphrelay.backends.sqlite.ledger import SqliteLedger
from graphrelay.bridge import BackgroundToolOutsideGraphError, background_tool, services
from graphrelay.bridge.calls import PENDING_INTERRUPT_TYPE, CallStatus
from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.resume import pending_task_ids
from graphrelay.graphs.scripted import ScriptedChatModel, ScriptToolCall, ScriptTurn
from tests.support.fakes import RecordingDispatcher


@background_tool(queue="cpu", idempotent=True, timeout=30)
def measure(text: str, factor: int = 1) -> int:
    """Length of `text` times `factor`."""
    return len(text) * factor


@background_tool(queue="io", fire_and_forget=True)
def ping(message: str) -> str:
    """Send and forget."""
    return message


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[services.BridgeServices]:
    installed = services.BridgeServices(
        ledger=Ledger(SqliteLedger(tmp_path / "ledger.sqlite")),
        dispatcher=RecordingDispatcher(),
        callback_url="http://127.0.0.1:1/internal/tasks/callback",
    )
    with services.bridge_services(installed):
        yield installed


def _agent(*calls: tuple[str, dict[str, Any]]) -> Any:
    script = [
        ScriptTurn(tool_calls=[ScriptToolCall(name=name, args=args) for name, args in calls]),
        ScriptTurn(content="done: {tools}"),
    ]
    model = ScriptedChatModel(scripts={"default": script})
    return create_agent(model, tools=[measure.tool, ping.tool], checkpointer=InMemorySaver())


CONFIG: Any = {"configurable": {"thread_id": "t1"}}
QUESTION = {"messages": [{"role": "user", "content": "go"}]}


def _dispatched(bridge: services.BridgeServices) -> list[Any]:
    dispatcher = bridge.dispatcher
    assert isinstance(dispatcher, RecordingDispatcher)
    return dispatcher.dispatched


def test_a_call_records_dispatches_and_interrupts(bridge: services.BridgeServices) -> None:
    agent = _agent(("measure", {"text": "abc", "factor": 2}))

    result = agent.invoke(QUESTION, CONFIG)

    [pending] = result["__interrupt__"]
    assert pending.value["type"] == PENDING_INTERRUPT_TYPE
    assert pending.value["queue"] == "cpu"
    [record] = _dispatched(bridge)
    assert record.task_id == pending.value["task_id"]
    assert record.args == {"text": "abc", "factor": 2}
    stored = bridge.ledger.get(record.task_id)
    assert stored is not None and stored.status == CallStatus.DISPATCHED


def test_resume_returns_the_stored_outcome(bridge: services.BridgeServices) -> None:
    agent = _agent(("measure", {"text": "abc", "factor": 2}))
    [pending] = agent.invoke(QUESTION, CONFIG)["__interrupt__"]
    task_id = pending.value["task_id"]
    bridge.ledger.finish(task_id, CallStatus.COMPLETED, result=6)
    outcome = bridge.ledger.get(task_id).outcome().model_dump()  # type: ignore[union-attr]

    result = agent.invoke(Command(resume={pending.id: outcome}), CONFIG)

    assert result["messages"][-1].content == "done: 6"
    assert len(_dispatched(bridge)) == 1


async def test_on_an_event_loop_the_same_protocol_is_awaited(
    bridge: services.BridgeServices,
) -> None:
    agent = _agent(("measure", {"text": "a"}), ("measure", {"text": "bb"}))
    first, second = (await agent.ainvoke(QUESTION, CONFIG))["__interrupt__"]
    dispatched = {r.task_id for r in _dispatched(bridge)}
    assert dispatched == {first.value["task_id"], second.value["task_id"]}
    bridge.ledger.finish(first.value["task_id"], CallStatus.COMPLETED, result=1)

    resumed = await agent.ainvoke(
        Command(resume={first.id: {"task_id": first.value["task_id"], "result": 1}}), CONFIG
    )

    [still_pending] = resumed["__interrupt__"]
    assert still_pending.id == second.id
    assert len(_dispatched(bridge)) == 2  # the re-run of the second found its record
    for pending in (first, second):
        stored = bridge.ledger.get(pending.value["task_id"])
        assert stored is not None and stored.status != CallStatus.INTENDED
    with pytest.raises(BackgroundToolOutsideGraphError):
        await measure.tool.ainvoke({"text": "abc"})


def test_resuming_one_of_two_re_runs_the_other_without_dispatching(
    bridge: services.BridgeServices,
) -> None:
    agent = _agent(("measure", {"text": "a"}), ("measure", {"text": "bb"}))
    first, second = agent.invoke(QUESTION, CONFIG)["__interrupt__"]
    assert first.id != second.id
    bridge.ledger.finish(first.value["task_id"], CallStatus.COMPLETED, result=1)

    result = agent.invoke(
        Command(resume={first.id: {"task_id": first.value["task_id"], "result": 1}}), CONFIG
    )

    [still_pending] = result["__interrupt__"]
    assert still_pending.id == second.id
    assert len(_dispatched(bridge)) == 2
    state = agent.get_state(CONFIG)
    assert pending_task_ids(state.interrupts) == {second.id: second.value["task_id"]}


def test_a_failed_outcome_becomes_a_tool_error(bridge: services.BridgeServices) -> None:
    agent = _agent(("measure", {"text": "a"}))
    [pending] = agent.invoke(QUESTION, CONFIG)["__interrupt__"]
    bridge.ledger.finish(pending.value["task_id"], CallStatus.FAILED, error="measure failed: boom")

    result = agent.invoke(
        Command(resume={pending.id: {"task_id": "x", "error": "measure failed: boom"}}), CONFIG
    )

    tool_message = result["messages"][-2]
    assert tool_message.status == "error"
    assert "measure failed: boom" in tool_message.content


def test_fire_and_forget_returns_at_once(bridge: services.BridgeServices) -> None:
    agent = _agent(("ping", {"message": "hi"}))

    result = agent.invoke(QUESTION, CONFIG)

    assert "__interrupt__" not in result
    [record] = _dispatched(bridge)
    assert record.fire_and_forget
    assert result["messages"][-1].content == f"done: ping queued on io as task {record.task_id}"


def test_outside_a_graph_the_error_says_what_to_do(bridge: services.BridgeServices) -> None:
    with pytest.raises(BackgroundToolOutsideGraphError, match="checkpointer"):
        measure(text="abc")
    with pytest.raises(BackgroundToolOutsideGraphError):
        measure.tool.invoke({"text": "abc"})
    assert _dispatched(bridge) == []
    assert measure.run_inline(text="abc", factor=3) == 9


def test_without_an_installed_bridge_the_error_says_how_to_install_one() -> None:
    agent = _agent(("measure", {"text": "a"}))
    with pytest.raises(services.BridgeNotConfiguredError, match="graphrelay serve"):
        agent.invoke(QUESTION, CONFIG)


def test_worker_side_execution_turns_failures_into_readable_errors() -> None:
    assert measure.execute({"text": "abcd"}).result == 4
    invalid = measure.execute({"text": "a", "factor": "many"})
    assert invalid.error is not None and "invalid arguments for measure" in invalid.error


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="queue must be one of"):
        background_tool(queue="gpu")(lambda: None)

    def undocumented() -> None:
        pass

    with pytest.raises(ValueError, match="needs a docstring"):
        background_tool(undocumented)
