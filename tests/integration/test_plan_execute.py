"""Plan-and-execute on real processes, with the real `langchain-openai` client talking to a
local OpenAI-compatible server that plays planner, executors and joiner (issue 6, must-shows
1 to 3)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graphrelay.bridge.calls import CallRecord, CallStatus
from tests.support import services
from tests.support.openai_server import FakeOpenAI, Reply, serving
from tests.support.stack import Stack, final_answer, production_env, stack_env

SECONDS = 3.0  # each background echo: long enough to watch two of them pending together


def _task(task_id: str, description: str, *deps: str, tool: str = "none") -> dict[str, Any]:
    return {"id": task_id, "description": description, "tool": tool, "depends_on": list(deps)}


def _plan(*tasks: dict[str, Any]) -> Reply:
    return Reply(content=json.dumps({"reasoning": "independent parts first", "tasks": tasks}))


def _decide(action: str, answer: str = "", feedback: str = "") -> Reply:
    body = {"reasoning": "looked at the results", "action": action, "answer": answer,
            "feedback": feedback}  # fmt: skip
    return Reply(content=json.dumps(body))


def _plans(key: str, question: str) -> list[Reply]:
    cycle = _plan(_task("a", "echo one", "b"), _task("b", "echo two", "a"))
    unknown = _plan(_task("a", "echo one", "nope"))
    return {
        "compare": [
            _plan(_task("t1", "echo alpha", tool="echo_later"),
                  _task("t2", "echo beta", tool="echo_later"),
                  _task("t3", "summarize", "t1", "t2")),
            _plan(_task("t4", "echo gamma", tool="echo_later")),
        ],
        "repair": [cycle, Reply(content='{"reasoning": "oops", "tasks": [}'),
                   _plan(_task("d", "echo delta", tool="echo_later"))],
        "hopeless": [cycle, unknown, Reply(content="I think we should just start")],
        "flaky": [_plan(_task("f", f"flaky {question.split()[-1]}", tool="flaky_once"))],
    }[key]  # fmt: skip


DECISIONS = {
    "compare": [_decide("replan", feedback="gamma is missing"),
                _decide("answer", answer="alpha, beta and gamma echoed")],
    "repair": [_decide("answer", answer="repaired and done")],
    "flaky": [_decide("answer", answer="the oven works")],
}  # fmt: skip


def respond(body: dict[str, Any]) -> Reply:
    """Plays planner and joiner (JSON-schema requests) and executors (tool requests)."""
    messages = body["messages"]
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("name")
    first_user = next(str(m["content"]) for m in messages if m["role"] == "user")
    if schema == "ResearchBrief":
        brief = {"reasoning": "two sides", "angles": ["echo north", "echo south"]}
        return Reply(content=json.dumps(brief))
    if schema is None and "tools" not in body:  # the researcher's synthesis
        return Reply(content="synthesis: " + " + ".join(re.findall(r"- (.*)", first_user)))
    if schema is None:
        return _act(first_user, messages[-1])
    key = next(k for k in ("compare", "repair", "hopeless", "flaky") if k in first_user)
    turn = sum(m["role"] == "assistant" for m in messages)
    return _plans(key, first_user)[turn] if schema == "Plan" else DECISIONS[key][turn]


def _act(task: str, last: dict[str, Any]) -> Reply:
    if last["role"] == "tool":
        return Reply(content=f"result: {last['content']}")
    if echo := re.search(r"echo (\w+)", task):
        return Reply(tool_calls=[("echo_later", {"text": echo[1], "seconds": SECONDS})])
    if flaky := re.search(r"flaky (\S+)", task):
        return Reply(tool_calls=[("flaky_once", {"name": flaky[1]})])
    results = re.findall(r"Result of task \w+: (.*)", task)
    return Reply(content="summary: " + " + ".join(results))


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with serving(respond) as fake:
        yield fake


def _planner_env(fake: FakeOpenAI) -> dict[str, str]:
    return {
        "GRAPHRELAY_GRAPHS": json.dumps(
            {
                "planner": "graphrelay.graphs.plan_execute:build_graph",
                "researcher": "graphrelay.graphs.research:build_graph",
            }
        ),
        "GRAPHRELAY_TOOL_MODULES": json.dumps(["tests.support.tools", "tests.support.plan_tools"]),
        "GRAPHRELAY_PLANNER_MODEL": "openai:planner-model",
        "GRAPHRELAY_PLANNER_BASE_URL": fake.base_url,
        "GRAPHRELAY_EXECUTOR_MODEL": "executor-model",
        "GRAPHRELAY_EXECUTOR_BASE_URL": fake.base_url,
        "GRAPHRELAY_MODEL_API_KEY": "sk-test",
    }


def _running(stack: Stack) -> Iterator[Stack]:
    try:
        stack.start("api", "io")
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def embedded_planner(
    tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI
) -> Iterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("planner-embedded")
    env = stack_env(data_dir, GRAPHRELAY_PROFILE="embedded", **_planner_env(fake_openai))
    yield from _running(Stack(env, data_dir))


@pytest.fixture(scope="module")
def production_planner(
    tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI
) -> Iterator[Stack]:
    services.check_redis()
    vhost, prefix = services.new_vhost(), f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    data_dir: Path = tmp_path_factory.mktemp("planner-production")
    try:
        env = production_env(data_dir, vhost, prefix, **_planner_env(fake_openai))
        yield from _running(Stack(env, data_dir))
    finally:
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)


@pytest.fixture(params=["embedded", "production"])
def planner(request: pytest.FixtureRequest) -> Stack:
    """Each test runs once per profile."""
    stack: Stack = request.getfixturevalue(f"{request.param}_planner")
    return stack


def _ask(stack: Stack, question: str, graph: str = "planner") -> str:
    client = stack.sdk()
    thread_id = str(client.threads.create()["thread_id"])
    client.runs.create(
        thread_id, graph, input={"messages": [{"role": "user", "content": question}]}
    )
    return thread_id


def _pending_together(records: list[CallRecord], tool: str) -> list[CallRecord] | None:
    calls = [r for r in records if r.tool == tool]
    return (
        calls if len(calls) == 2 and all(r.status == CallStatus.DISPATCHED for r in calls) else None
    )


def test_plan_parallel_tasks_suspend_replan_and_answer(
    planner: Stack, fake_openai: FakeOpenAI
) -> None:
    thread_id = _ask(planner, f"compare alpha and beta ({uuid.uuid4().hex[:6]})")

    # Must-show 3: both independent tasks' background calls are pending at once.
    both = planner.wait_for(
        "t1 and t2 pending together",
        lambda: _pending_together(planner.records(thread_id), "echo_later"),
    )
    assert {r.args["text"] for r in both} == {"alpha", "beta"}
    # Each task's interrupt is saved as that task stops, so the state may lag the ledger a bit.
    planner.pending(thread_id, count=2)
    waiting = planner.sdk().threads.get_state(thread_id)
    assert {i: run["status"] for i, run in waiting["values"]["tasks"].items()} == {
        "t1": "running", "t2": "running", "t3": "pending"
    }  # fmt: skip
    assert len(waiting["interrupts"]) == 2

    state = planner.wait_done(thread_id)

    values = state["values"]
    assert final_answer(state) == "alpha, beta and gamma echoed"
    assert values["phase"] == "answered" and values["replans"] == 1
    assert [task["id"] for task in values["plan"]["tasks"]] == ["t4"]
    assert values["tasks"]["t4"] == {"status": "done", "attempts": 1,
                                     "result": "result: echo: gamma", "error": None}  # fmt: skip
    first_report = next(m for m in values["joiner_messages"] if m["type"] == "human")["content"]
    assert "t3 (summarize): summary: result: echo: alpha + result: echo: beta" in first_report
    records = planner.records(thread_id)
    assert sorted(r.args["text"] for r in records) == ["alpha", "beta", "gamma"]
    assert all(r.status == CallStatus.APPLIED and r.attempts == 1 for r in records)
    # The windows of the two first calls overlap: neither waited for the other.
    alpha, beta = sorted((r for r in records if r.args["text"] != "gamma"),
                         key=lambda r: r.args["text"])  # fmt: skip
    assert alpha.finished_at and beta.finished_at
    assert alpha.created_at < beta.finished_at and beta.created_at < alpha.finished_at
    schemas = planner.sdk().assistants.get_schemas("planner")
    assert {"plan", "tasks", "phase"} <= set(schemas["state_schema"]["properties"])


def test_an_invalid_plan_is_repaired_with_its_error(
    planner: Stack, fake_openai: FakeOpenAI
) -> None:
    thread_id = _ask(planner, f"repair {uuid.uuid4().hex[:6]}")

    state = planner.wait_done(thread_id)

    assert final_answer(state) == "repaired and done"
    feedback = [m["content"] for m in state["values"]["planner_messages"] if m["type"] == "human"]
    assert "dependencies form a cycle (→ means depends on): a → b → a" in feedback[1]
    assert "the reply is not a valid Plan" in feedback[2]
    assert state["values"]["tasks"]["d"]["status"] == "done"


def test_a_plan_that_stays_invalid_fails_with_a_clear_message(planner: Stack) -> None:
    thread_id = _ask(planner, f"hopeless {uuid.uuid4().hex[:6]}")

    state = planner.wait_done(thread_id)

    answer = final_answer(state)
    assert answer.startswith("I could not make a valid plan in 3 attempts; the last one failed")
    assert "the reply is not a valid Plan" in answer
    feedback = [m["content"] for m in state["values"]["planner_messages"] if m["type"] == "human"]
    assert "task 'a' depends on unknown tasks ['nope']" in feedback[2]
    assert state["values"]["phase"] == "failed"
    assert planner.records(thread_id) == []


def test_a_failed_tool_is_retried_by_its_executor_without_a_replan(
    planner: Stack, fake_openai: FakeOpenAI
) -> None:
    question = f"flaky oven-{uuid.uuid4().hex[:6]}"
    thread_id = _ask(planner, question)

    state = planner.wait_done(thread_id)

    assert final_answer(state) == "the oven works"
    run = state["values"]["tasks"]["f"]
    assert (run["status"], run["attempts"]) == ("done", 2)
    assert state["values"]["replans"] == 0
    plan_requests = [b for b in fake_openai.structured_requests("Plan")
                     if question in str(b["messages"][1]["content"])]  # fmt: skip
    assert len(plan_requests) == 1
    failed, succeeded = sorted(planner.records(thread_id), key=lambda r: r.created_at)
    assert failed.error is not None and "is not ready yet" in failed.error
    assert succeeded.result == f"{question.split()[-1]} is ready"


def test_researcher_analysts_suspend_in_parallel_in_their_own_subgraphs(planner: Stack) -> None:
    thread_id = _ask(planner, "weigh north against south", graph="researcher")

    both = planner.wait_for(
        "both analysts' calls pending together",
        lambda: _pending_together(planner.records(thread_id), "echo_later"),
    )
    namespaces = [record.checkpoint_ns for record in both]
    assert all(ns.startswith("analyst:") for ns in namespaces)
    assert len({ns.split("|")[0] for ns in namespaces}) == 2  # one subgraph namespace each
    state = planner.wait_done(thread_id)

    findings = sorted((f["angle"], f["finding"]) for f in state["values"]["findings"])
    assert findings == [
        ("echo north", "result: echo: north"),
        ("echo south", "result: echo: south"),
    ]
    assert final_answer(state).startswith("synthesis: echo ")
