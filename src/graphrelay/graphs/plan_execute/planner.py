"""The planner node: asks for a Plan, validates it, and repairs or fails a bad one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
)
from langchain_core.tools import BaseTool
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from graphrelay.graphs.plan_execute import prompts
from graphrelay.graphs.plan_execute.plan import Plan, PlanError, validate_plan
from graphrelay.graphs.plan_execute.state import REPLACE, PlanExecuteState, new_run
from graphrelay.graphs.plan_execute.structured import ask

# Phases in which the planner continues an exchange; from any other it starts a new request.
_CONTINUING = ("planning", "replanning")


class Planner:
    """Plans with structured output; an invalid plan goes back with the error, a few times."""

    def __init__(self, model: BaseChatModel, tools: Sequence[BaseTool], max_repairs: int) -> None:
        self.model = model
        self.system = SystemMessage(prompts.planner_system(tools))
        self.max_repairs = max_repairs

    async def __call__(self, state: PlanExecuteState) -> dict[str, Any]:
        """One planning attempt."""
        fresh = state.get("phase") not in _CONTINUING
        exchange, update = _fresh_exchange(state) if fresh else _continued_exchange(state)
        reply = await ask(self.model, Plan, [self.system, *exchange])
        update["planner_messages"].append(reply.raw)
        error = reply.error or _problems(reply.parsed)
        if error is None and reply.parsed is not None:
            return {**update, **_accepted(reply.parsed)}
        repairs = (0 if fresh else state.get("repairs", 0)) + 1
        if repairs > self.max_repairs:
            answer = (f"I could not make a valid plan in {repairs} attempts; the last one "
                      f"failed because {error}")  # fmt: skip
            return {**update, "messages": [AIMessage(content=answer)], "phase": "failed",
                    "repairs": repairs}  # fmt: skip
        feedback = f"That plan cannot run: {error}. Reply with a corrected Plan."
        update["planner_messages"].append(HumanMessage(content=feedback))
        return {**update, "phase": "planning", "repairs": repairs}


def _fresh_exchange(state: PlanExecuteState) -> tuple[list[BaseMessage], dict[str, Any]]:
    """A new question: clear the last question's plan, tasks and exchanges."""
    exchange: list[BaseMessage] = [HumanMessage(content=question_of(state))]
    return exchange, {
        "planner_messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *exchange],
        "joiner_messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES)],
        "plan": None,
        "tasks": {REPLACE: True},
        "replans": 0,
    }


def _continued_exchange(state: PlanExecuteState) -> tuple[list[BaseMessage], dict[str, Any]]:
    """A repair or a replan: the exchange so far ends with the planner's next instructions."""
    return list(state.get("planner_messages", [])), {"planner_messages": []}


def _problems(plan: Plan | None) -> str | None:
    if plan is None:
        return "no plan in the reply"
    try:
        validate_plan(plan)
    except PlanError as exc:
        return str(exc)
    return None


def _accepted(plan: Plan) -> dict[str, Any]:
    return {
        "plan": plan.model_dump(),
        "tasks": {REPLACE: True, **{task.id: new_run() for task in plan.tasks}},
        "phase": "executing",
        "repairs": 0,
    }


def question_of(state: Mapping[str, Any]) -> str:
    """The text of the user's latest message in a state with `messages`."""
    messages: list[AnyMessage] = state.get("messages", [])
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return str(message.text)
    raise ValueError("plan-and-execute needs a user message in 'messages'")
