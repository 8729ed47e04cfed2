"""The joiner node: answers from the plan's results, or sends the planner back to work."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from graphrelay.graphs.plan_execute import prompts
from graphrelay.graphs.plan_execute.plan import Decision, Plan
from graphrelay.graphs.plan_execute.planner import question_of
from graphrelay.graphs.plan_execute.state import PlanExecuteState
from graphrelay.graphs.plan_execute.structured import ask


class Joiner:
    """Decides with structured output; replans at most `max_replans` times."""

    def __init__(self, model: BaseChatModel, max_replans: int) -> None:
        self.model = model
        self.system = SystemMessage(prompts.JOINER)
        self.max_replans = max_replans

    async def __call__(self, state: PlanExecuteState) -> dict[str, Any]:
        """Judge the finished plan."""
        plan = Plan.model_validate(state["plan"])
        report = prompts.results_report(question_of(state), plan, state.get("tasks", {}))
        asked = HumanMessage(content=report)
        exchange = [*state.get("joiner_messages", []), asked]
        reply = await ask(self.model, Decision, [self.system, *exchange])
        update: dict[str, Any] = {"joiner_messages": [asked, reply.raw]}
        decision = reply.parsed
        if decision is None:
            return {**update, **_finish("failed", f"I could not judge the results: {reply.error}")}
        if decision.action == "answer":
            return {**update, **_finish("answered", decision.answer)}
        replans = state.get("replans", 0)
        if replans >= self.max_replans:
            text = (f"I stopped after {replans} replan(s) without an answer. Last verdict: "
                    f"{decision.feedback}\n\n{report}")  # fmt: skip
            return {**update, **_finish("failed", text)}
        request = HumanMessage(content=prompts.replan_request(report, decision.feedback))
        return {**update, "planner_messages": [request], "phase": "replanning",
                "replans": replans + 1}  # fmt: skip


def _finish(phase: str, text: str) -> dict[str, Any]:
    return {"messages": [AIMessage(content=text)], "phase": phase}
