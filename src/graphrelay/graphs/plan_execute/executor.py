"""The executor node: one `create_agent` run on one task, with the configured tools.

Each task the scheduler sends runs as its own LangGraph task, so the agent's checkpoints live
in that task's namespace and a background tool suspends and resumes it as anywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp

from graphrelay.graphs.plan_execute import prompts
from graphrelay.graphs.plan_execute.state import TaskInput, TaskRun


class Executor:
    """Runs the executor agent on one task and reports the task's status."""

    def __init__(self, model: BaseChatModel, tools: Sequence[BaseTool]) -> None:
        self.agent = create_agent(
            model=model, tools=list(tools), system_prompt=prompts.EXECUTOR, name="executor"
        )

    async def __call__(self, state: TaskInput, config: RunnableConfig) -> dict[str, Any]:
        """Run the task; a tool error or a model error marks it failed, for a retry."""
        payload = state
        task_id = str(payload["task"]["id"])
        message = HumanMessage(content=prompts.task_prompt(payload))
        try:
            out = await self.agent.ainvoke({"messages": [message]}, config)
        except GraphBubbleUp:  # an interrupt: the task suspends on a background call
            raise
        except Exception as exc:  # the joiner and the user must read every failure
            return _report(task_id, payload["attempt"], None, f"{type(exc).__name__}: {exc}")
        result, error = outcome(out["messages"])
        return _report(task_id, payload["attempt"], result, error)


def outcome(messages: Sequence[AnyMessage]) -> tuple[str | None, str | None]:
    """(result, error): the agent's last answer, and the error if its last tool call failed."""
    answer = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    result = str(answer.text) if answer is not None else None
    last_tool = next((m for m in reversed(messages) if isinstance(m, ToolMessage)), None)
    if last_tool is not None and last_tool.status == "error":
        return result, f"{last_tool.name} failed: {last_tool.text}"
    return result, None


def _report(task_id: str, attempt: int, result: str | None, error: str | None) -> dict[str, Any]:
    run = TaskRun(status="failed" if error else "done", attempts=attempt, result=result,
                  error=error)  # fmt: skip
    return {"tasks": {task_id: run}}
