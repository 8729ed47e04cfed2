"""The plan a planner model writes: a DAG of tasks, and the checks it must pass."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from graphlib import CycleError, TopologicalSorter
from typing import Literal

from pydantic import BaseModel, Field


class Task(BaseModel):
    """One unit of work for an executor; runs once all of `depends_on` are done."""

    id: str = Field(description="Short unique id, e.g. 't1'")
    description: str = Field(description="What the executor must do, self-contained")
    tool: str = Field(description="The tool or skill category the task needs, or 'none'")
    depends_on: list[str] = Field(description="Ids of tasks whose results this task needs")


class Plan(BaseModel):
    """Reasoning first, then the tasks; independent tasks run in parallel."""

    reasoning: str = Field(description="How the question breaks down, before any task")
    tasks: list[Task] = Field(description="The tasks; dependencies must form no cycle")


class Decision(BaseModel):
    """The joiner's verdict on a finished plan: answer the user, or plan again."""

    reasoning: str = Field(description="What the results show, before deciding")
    action: Literal["answer", "replan"]
    answer: str = Field(description="The final answer when action is 'answer', else ''")
    feedback: str = Field(description="What a new plan must do when action is 'replan', else ''")


class PlanError(ValueError):
    """A plan that cannot run; the message says every problem, for the planner to fix."""


def validate_plan(plan: Plan) -> None:
    """Raise PlanError unless ids are unique, dependencies known and the graph acyclic."""
    problems: list[str] = []
    if not plan.tasks:
        problems.append("the plan has no tasks")
    ids = [task.id for task in plan.tasks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"task ids must be unique; repeated: {duplicates}")
    for task in plan.tasks:
        unknown = [dep for dep in task.depends_on if dep not in ids]
        if unknown:
            problems.append(f"task {task.id!r} depends on unknown tasks {unknown}")
    if not problems and (cycle := find_cycle(plan.tasks)):
        problems.append("dependencies form a cycle (→ means depends on): " + " → ".join(cycle))
    if problems:
        raise PlanError("; ".join(problems))


def find_cycle(tasks: Iterable[Task]) -> list[str]:
    """One dependency cycle as a list of ids (first id repeated last), or []."""
    sorter = TopologicalSorter({task.id: task.depends_on for task in tasks})
    try:
        sorter.prepare()
    except CycleError as exc:
        return [str(node) for node in reversed(exc.args[1])]
    return []


def ready_tasks(plan: Plan, done: set[str], started: set[str]) -> list[Task]:
    """Tasks not yet started whose dependencies are all done, in plan order."""
    return [
        task
        for task in plan.tasks
        if task.id not in started and all(dep in done for dep in task.depends_on)
    ]


def depth(plan: Plan) -> int:
    """Tasks on the longest dependency chain: the critical path in task durations."""
    by_id = {task.id: task for task in plan.tasks}
    memo: dict[str, int] = {}

    def chain(task_id: str) -> int:
        if task_id not in memo:
            deps = by_id[task_id].depends_on
            memo[task_id] = 1 + max((chain(dep) for dep in deps), default=0)
        return memo[task_id]

    return max((chain(task.id) for task in plan.tasks), default=0)


def results_of(task_ids: Iterable[str], runs: Mapping[str, Mapping[str, object]]) -> dict[str, str]:
    """Task id → result text for finished tasks among `task_ids`."""
    return {i: str(runs[i].get("result") or "") for i in task_ids if i in runs}
