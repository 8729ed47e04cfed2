"""An outcome reaches only the call whose idempotency key it carries, whatever the graph's
shape, on real processes (issue 13, item 1).

Each graph makes two background calls, `gate("alpha")` and `gate("beta")`, whose worker
bodies wait until the test opens their gate. Opening one gate at a time, in both orders, the
thread must stay interrupted until both are in, and each call must return its own result:
several calls in one ToolNode task (calls run concurrently), a plain node calling two tools in
turn, `Send` tasks with the same call id, and the ToolNode agent as a subgraph.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphrelay.bridge.calls import CallStatus
from tests.support import services
from tests.support.stack import Stack, production_env, stack_env

GRAPHS = {
    "agent": "graphrelay.examples.agent:build_graph",
    "toolnode": "tests.support.graphs:build_toolnode_agent",
    "subgraph": "tests.support.graphs:build_subgraph_agent",
    "sequential": "tests.support.graphs:build_sequential",
    "fan_out": "tests.support.graphs:build_fan_out",
}
ORDERS = [("alpha", "beta"), ("beta", "alpha")]
RIGHT = {"alpha": "result-alpha", "beta": "result-beta"}


def _stack(env: dict[str, str], data_dir: Path) -> Iterator[Stack]:
    stack = Stack(env, data_dir)
    try:
        stack.start("api", "io")
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module", params=["embedded", "production"])
def gates(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """API and an io worker serving the graph shapes."""
    data_dir = tmp_path_factory.mktemp(f"gates-{request.param}")
    graphs = {"GRAPHRELAY_GRAPHS": json.dumps(GRAPHS)}
    if request.param == "embedded":
        yield from _stack(stack_env(data_dir, GRAPHRELAY_PROFILE="embedded", **graphs), data_dir)
        return
    services.check_redis()
    vhost, prefix = services.new_vhost(), f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    try:
        yield from _stack(production_env(data_dir, vhost, prefix, **graphs), data_dir)
    finally:
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)


@pytest.fixture
def stack(gates: Stack) -> Iterator[Stack]:
    """The shapes' stack with every gate closed (a test's open gates are removed after it)."""
    _close_all(gates)
    yield gates
    _close_all(gates)


def _close_all(stack: Stack) -> None:
    for opened in (stack.data_dir / "gates").glob("*"):
        opened.unlink()


def _start(stack: Stack, graph: str, run_input: dict[str, Any]) -> str:
    client = stack.sdk()
    thread_id = str(client.threads.create()["thread_id"])
    client.runs.create(thread_id, graph, input=run_input)
    return thread_id


def _open(stack: Stack, name: str) -> None:
    gates = stack.data_dir / "gates"
    gates.mkdir(exist_ok=True)
    (gates / name).touch()


def _applied(stack: Stack, thread_id: str, name: str) -> bool:
    """The call's outcome is in (the thread resumed with it, or it was settled)."""
    records = [r for r in stack.records(thread_id) if r.args.get("name") == name]
    return bool(records) and all(r.status == CallStatus.APPLIED for r in records)


def _quiet(stack: Stack, thread_id: str) -> bool:
    """No run is on the thread or pending for it (and it did not end in error)."""
    client = stack.sdk()
    status = client.threads.get(thread_id)["status"]
    if status == "error":
        raise AssertionError(f"thread {thread_id} ended in error")
    active = [r for r in client.runs.list(thread_id) if r["status"] in ("pending", "running")]
    return status != "busy" and not active


def _pass_gates_one_by_one(stack: Stack, thread_id: str, order: tuple[str, str]) -> None:
    """Open the first gate; once its call is in and applied, the thread must still wait on
    the other call, and on it alone. Then open the second."""
    client = stack.sdk()
    first, second = order
    stack.wait_for(f"{first} dispatched", lambda: any(
        r.args.get("name") == first for r in stack.records(thread_id)))  # fmt: skip
    _open(stack, first)
    stack.wait_for(f"{first} applied", lambda: _applied(stack, thread_id, first))
    stack.wait_for("no run on the thread", lambda: _quiet(stack, thread_id))
    assert client.threads.get(thread_id)["status"] == "interrupted"
    waiting = [
        item["value"]["args"]["name"] for item in client.threads.get_state(thread_id)["interrupts"]
    ]
    assert waiting == [second]
    _open(stack, second)


@pytest.mark.parametrize("order", ORDERS, ids=["alpha-first", "beta-first"])
def test_two_calls_in_one_toolnode_task_each_get_their_own_result(
    stack: Stack, order: tuple[str, str]
) -> None:
    question = {"messages": [{"role": "user", "content": "open both gates"}]}
    thread_id = _start(stack, "toolnode", question)

    _pass_gates_one_by_one(stack, thread_id, order)
    state = stack.wait_done(thread_id)

    assert _tool_results(state) == RIGHT
    _each_ran_once_and_applied(stack, thread_id)


@pytest.mark.parametrize("order", ORDERS, ids=["alpha-first", "beta-first"])
def test_the_toolnode_agent_as_a_subgraph(stack: Stack, order: tuple[str, str]) -> None:
    question = {"messages": [{"role": "user", "content": "open both gates"}]}
    thread_id = _start(stack, "subgraph", question)

    _pass_gates_one_by_one(stack, thread_id, order)
    state = stack.wait_done(thread_id)

    assert _tool_results(state) == RIGHT
    _each_ran_once_and_applied(stack, thread_id)


def test_a_plain_node_calling_two_tools_in_turn(stack: Stack) -> None:
    thread_id = _start(stack, "sequential", {"names": ["alpha", "beta"]})

    _pass_gates_one_by_one(stack, thread_id, ("alpha", "beta"))
    state = stack.wait_done(thread_id)

    assert state["values"]["results"] == RIGHT
    _each_ran_once_and_applied(stack, thread_id)


@pytest.mark.parametrize("order", ORDERS, ids=["alpha-first", "beta-first"])
def test_send_tasks_with_the_same_call_id(stack: Stack, order: tuple[str, str]) -> None:
    thread_id = _start(stack, "fan_out", {"names": ["alpha", "beta"]})

    stack.wait_for("both calls dispatched", lambda: len(stack.records(thread_id)) == 2)
    _pass_gates_one_by_one(stack, thread_id, order)
    state = stack.wait_done(thread_id)

    assert state["values"]["results"] == RIGHT
    _each_ran_once_and_applied(stack, thread_id)


def _each_ran_once_and_applied(stack: Stack, thread_id: str) -> None:
    records = stack.records(thread_id)
    assert sorted(r.args["name"] for r in records) == ["alpha", "beta"]
    assert [r.attempts for r in records] == [1, 1]
    assert all(r.status == CallStatus.APPLIED for r in records)


def _tool_results(state: dict[str, Any]) -> dict[str, str]:
    """Gate name → the ToolMessage of its call, matched by tool call id."""
    messages = state["values"]["messages"]
    names = {call["id"]: call["args"]["name"] for m in messages if m["type"] == "ai"
             for call in m.get("tool_calls") or []}  # fmt: skip
    return {names[m["tool_call_id"]]: m["content"] for m in messages if m["type"] == "tool"}


def test_a_bare_resume_value_while_a_call_waits_is_refused(stack: Stack) -> None:
    question = {"messages": [{"role": "user", "content": "open both gates"}]}
    thread_id = _start(stack, "toolnode", question)
    stack.wait_for("a pending call", lambda: stack.sdk().threads.get_state(thread_id)["interrupts"])
    stack.wait_for("no run on the thread", lambda: _quiet(stack, thread_id))

    with pytest.raises(httpx.HTTPStatusError) as refused:
        stack.sdk().runs.create(thread_id, "toolnode", command={"resume": "yes"})

    assert refused.value.response.status_code == 409
    assert "background call" in refused.value.response.json()["detail"]
    _open(stack, "alpha")
    _open(stack, "beta")
    assert _tool_results(stack.wait_done(thread_id)) == RIGHT
