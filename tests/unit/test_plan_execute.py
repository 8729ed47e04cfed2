"""Plan-and-execute in process with the scripted model: the graph's paths, no workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from graphrelay.config import Settings
from graphrelay.graphs.plan_execute import build_graph
from graphrelay.server.ports import Graph


def _task(task_id: str, description: str, *deps: str, tool: str = "lookup") -> dict[str, Any]:
    return {"id": task_id, "description": description, "tool": tool, "depends_on": list(deps)}


def _plan(*tasks: dict[str, Any]) -> dict[str, Any]:
    return {"json": {"reasoning": "split it up", "tasks": list(tasks)}}


def _answer(text: str) -> dict[str, Any]:
    return {"json": {"reasoning": "enough", "action": "answer", "answer": text, "feedback": ""}}


REPLAN = {"json": {"reasoning": "missing", "action": "replan", "answer": "", "feedback": "more"}}
DIAMOND = _plan(
    _task("a", "look up alpha"), _task("b", "look up beta"), _task("c", "combine", "a", "b")
)
EXECUTORS: dict[str, list[dict[str, Any]]] = {
    "look up alpha": [{"tool_calls": [{"name": "lookup", "args": {"topic": "alpha"}}]},
                      {"content": "{tool:lookup}"}],
    "look up beta": [{"tool_calls": [{"name": "lookup", "args": {"topic": "beta"}}]},
                     {"content": "{tool:lookup}"}],
    "look up gamma": [{"tool_calls": [{"name": "lookup", "args": {"topic": "gamma"}}]},
                      {"content": "{tool:lookup}"}],
    "combine": [{"content": "combined"}],
    "warm up": [{"tool_calls": [{"name": "broken_once", "args": {"name": "oven"}}]},
                {"content": "{tool:broken_once}"}],
}  # fmt: skip
SCRIPTS: dict[str, list[dict[str, Any]]] = {
    **EXECUTORS,
    "Plan:diamond": [DIAMOND],
    "Decision:diamond": [_answer("alpha and beta combined")],
    "Plan:cycle": [
        _plan(_task("a", "look up alpha", "b"), _task("b", "look up beta", "a")),
        _plan(_task("a", "look up alpha", "zzz")),
        _plan(_task("a", "look up alpha")),
    ],
    "Decision:cycle": [_answer("fixed")],
    "Plan:garbage": [{"content": "this is not JSON"}],
    "Plan:replan": [_plan(_task("a", "look up alpha")), _plan(_task("g", "look up gamma"))],
    "Decision:replan": [REPLAN, _answer("gamma found")],
    "Plan:retry": [_plan(_task("w", "warm up", tool="broken_once"))],
    "Decision:retry": [_answer("warm")],
}


@pytest.fixture
def graph(tmp_path: Path) -> Graph:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"scripts": SCRIPTS}))
    settings = Settings(
        data_dir=tmp_path, model=f"scripted:{script}", tool_modules=["tests.support.plan_tools"]
    )
    return build_graph(InMemorySaver(), settings)


async def _ask(graph: Graph, question: str) -> dict[str, Any]:
    config = {"configurable": {"thread_id": question}}
    result: dict[str, Any] = await graph.ainvoke(
        {"messages": [{"role": "user", "content": question}]}, config
    )
    return result


async def test_a_diamond_runs_both_branches_in_one_step_then_joins(graph: Graph) -> None:
    state = await _ask(graph, "the diamond please")

    assert state["phase"] == "answered"
    assert state["messages"][-1].content == "alpha and beta combined"
    assert {i: run["status"] for i, run in state["tasks"].items()} == dict.fromkeys("abc", "done")
    assert state["tasks"]["a"]["result"] == "facts about alpha"
    steps = [
        snapshot.next
        async for snapshot in graph.aget_state_history(
            {"configurable": {"thread_id": "the diamond please"}}
        )
    ]
    assert ("execute", "execute") in steps  # a and b sent in the same superstep


async def test_an_invalid_plan_goes_back_with_its_error_until_repaired(graph: Graph) -> None:
    state = await _ask(graph, "a cycle")

    assert state["messages"][-1].content == "fixed"
    feedback = [m.content for m in state["planner_messages"] if m.type == "human"][1:]
    assert "dependencies form a cycle (→ means depends on): a → b → a" in feedback[0]
    assert "task 'a' depends on unknown tasks ['zzz']" in feedback[1]


async def test_a_plan_that_never_parses_fails_clearly(graph: Graph) -> None:
    state = await _ask(graph, "garbage in")

    assert state["phase"] == "failed"
    answer = state["messages"][-1].content
    assert answer.startswith("I could not make a valid plan in 3 attempts")
    assert "the reply is not a valid Plan" in answer


async def test_the_joiner_asks_for_a_new_plan(graph: Graph) -> None:
    state = await _ask(graph, "replan this")

    assert state["replans"] == 1
    assert state["messages"][-1].content == "gamma found"
    assert list(state["tasks"]) == ["g"]
    assert "A new plan is needed: more" in state["planner_messages"][-2].content


async def test_a_failed_task_is_retried_before_any_replan(graph: Graph) -> None:
    state = await _ask(graph, "retry the oven")

    assert state["tasks"]["w"] == {
        "status": "done", "attempts": 2, "result": "oven is ready", "error": None
    }  # fmt: skip
    assert state["replans"] == 0
    assert state["messages"][-1].content == "warm"


async def test_a_new_question_on_the_thread_starts_a_new_plan(graph: Graph) -> None:
    config: Any = {"configurable": {"thread_id": "two questions"}}
    first = await graph.ainvoke({"messages": [{"role": "user", "content": "the diamond"}]}, config)
    assert first["phase"] == "answered"

    second = await graph.ainvoke({"messages": [{"role": "user", "content": "garbage"}]}, config)

    assert second["phase"] == "failed"
    assert second["plan"] is None and second["tasks"] == {}
    question = second["planner_messages"][0]
    assert question.type == "human" and question.content == "garbage"  # the old exchange is gone
