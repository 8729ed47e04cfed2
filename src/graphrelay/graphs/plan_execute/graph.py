"""The plan-and-execute graph: planner → scheduler → executors in parallel → joiner.

The scheduler sends every ready task at once (`Send`), LLMCompiler-style; a failed task is
sent again, with its error, until it has had `task_max_attempts` tries, before the joiner
may ask for a new plan.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from graphrelay.config import Settings
from graphrelay.graphs.chat_models import executor_model, planner_model
from graphrelay.graphs.plan_execute.executor import Executor
from graphrelay.graphs.plan_execute.joiner import Joiner
from graphrelay.graphs.plan_execute.plan import Plan, Task, ready_tasks, results_of
from graphrelay.graphs.plan_execute.planner import Planner
from graphrelay.graphs.plan_execute.state import PlanExecuteState, TaskInput, TaskRun
from graphrelay.graphs.tools import configured_tools
from graphrelay.server.ports import Graph


class Scheduler:
    """Marks the tasks to run now as running: retries first, then every ready task."""

    def __init__(self, max_attempts: int, max_parallel: int) -> None:
        self.max_attempts = max_attempts
        self.max_parallel = max_parallel

    def __call__(self, state: PlanExecuteState) -> dict[str, Any]:
        """One scheduling round."""
        plan, runs = Plan.model_validate(state["plan"]), state.get("tasks", {})
        retries = [t for t in plan.tasks if self._retryable(runs[t.id])]
        done = {i for i, run in runs.items() if run["status"] == "done"}
        started = {i for i, run in runs.items() if run["status"] != "pending"}
        chosen = retries + ready_tasks(plan, done, started)
        if self.max_parallel:
            chosen = chosen[: self.max_parallel]
        return {"tasks": {t.id: {**runs[t.id], "status": "running"} for t in chosen}}

    def _retryable(self, run: TaskRun) -> bool:
        return run["status"] == "failed" and run["attempts"] < self.max_attempts


def send_running(state: PlanExecuteState) -> list[Send] | str:
    """A `Send` to an executor for every running task; the joiner when none is left."""
    plan, runs = Plan.model_validate(state["plan"]), state.get("tasks", {})
    running = [task for task in plan.tasks if runs[task.id]["status"] == "running"]
    if not running:
        return "join"
    return [Send("execute", _task_input(task, runs)) for task in running]


def _task_input(task: Task, runs: dict[str, TaskRun]) -> TaskInput:
    run = runs[task.id]
    return TaskInput(
        task=task.model_dump(),
        dependencies=results_of(task.depends_on, runs),
        attempt=run["attempts"] + 1,
        previous_error=run["error"],
    )


def after_planner(state: PlanExecuteState) -> str:
    """Repair (planner again), run the plan, or stop with the planner's failure."""
    return {"planning": "plan", "executing": "schedule"}.get(state.get("phase", ""), END)


def after_joiner(state: PlanExecuteState) -> str:
    """Plan again or stop."""
    return "plan" if state.get("phase") == "replanning" else END


def build_graph(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """The plan-and-execute graph with parallel tasks, compiled with `checkpointer`."""
    tools = configured_tools(settings)
    planner = planner_model(settings)
    builder = StateGraph(PlanExecuteState)
    builder.add_node("plan", Planner(planner, tools, settings.plan_max_repairs))
    builder.add_node("schedule", Scheduler(settings.task_max_attempts, settings.plan_max_parallel))
    builder.add_node("execute", Executor(executor_model(settings), tools))
    builder.add_node("join", Joiner(planner, settings.plan_max_replans))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", after_planner, ["plan", "schedule", END])
    builder.add_conditional_edges("schedule", send_running, ["execute", "join"])
    builder.add_edge("execute", "schedule")
    builder.add_conditional_edges("join", after_joiner, ["plan", END])
    graph: Graph = builder.compile(checkpointer=checkpointer, name="plan_execute")
    return graph


def build_sequential_graph(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """The textbook baseline: the same graph, one task at a time."""
    return build_graph(checkpointer, settings.model_copy(update={"plan_max_parallel": 1}))
