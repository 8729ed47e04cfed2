"""The plan-and-execute thread state: the plan, each task's status, the planner's exchange."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

# pydantic needs typing_extensions' TypedDict on 3.11 to make the API's JSON schemas.
from typing_extensions import TypedDict

TaskStatus = Literal["pending", "running", "done", "failed"]
Phase = Literal["planning", "executing", "replanning", "answered", "failed"]

# A `tasks` update holding this key replaces the whole map (a new plan) instead of merging.
REPLACE = "__replace__"


class TaskRun(TypedDict):
    """Where one task of the current plan stands."""

    status: TaskStatus
    attempts: int
    result: str | None
    error: str | None


def merge_tasks(
    current: dict[str, TaskRun] | None, update: dict[str, Any] | None
) -> dict[str, TaskRun]:
    """Parallel executors each report their own task; a new plan replaces the map."""
    update = dict(update or {})
    if update.pop(REPLACE, False):
        return update
    return {**(current or {}), **update}


def new_run() -> TaskRun:
    """A task of a fresh plan."""
    return TaskRun(status="pending", attempts=0, result=None, error=None)


class PlanExecuteState(TypedDict, total=False):
    """Thread state. `plan` and `tasks` are plain JSON so any client can read them."""

    messages: Annotated[list[AnyMessage], add_messages]
    plan: dict[str, Any] | None
    tasks: Annotated[dict[str, TaskRun], merge_tasks]
    phase: Phase
    replans: int
    repairs: int
    planner_messages: Annotated[list[AnyMessage], add_messages]
    joiner_messages: Annotated[list[AnyMessage], add_messages]


class TaskInput(TypedDict):
    """What the scheduler sends one executor: its task and its dependencies' results only."""

    task: dict[str, Any]
    dependencies: dict[str, str]
    attempt: int
    previous_error: str | None
