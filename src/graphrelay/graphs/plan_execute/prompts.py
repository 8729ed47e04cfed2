"""What the planner, the executors and the joiner are told."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from langchain_core.tools import BaseTool

from graphrelay.graphs.plan_execute.plan import Plan
from graphrelay.graphs.plan_execute.state import TaskInput, TaskRun

PLANNER = """You plan how to answer the user's question as a graph of tasks.
Each task is carried out by an executor agent that sees only the task's description and the
results of the tasks it depends on, so make each description self-contained. Tasks that do
not depend on each other run at the same time: add a dependency only when a task needs
another task's result. Reply with a Plan: your reasoning first, then the tasks.

Tools the executors have:
{tools}"""

EXECUTOR = """You carry out one task of a larger plan, using your tools where they help.
Reply with the task's result only; when a tool fails, say what failed."""

JOINER = """You judge the results of a plan made to answer the user's question.
If they are enough, answer the question (action 'answer'). If a task failed or something
is missing, ask for a new plan (action 'replan') and say what it must do differently."""


def planner_system(tools: Sequence[BaseTool]) -> str:
    """The planner's instructions, listing the executors' tools."""
    listed = "\n".join(f"- {tool.name}: {tool.description.splitlines()[0]}" for tool in tools)
    return PLANNER.format(tools=listed or "- (none)")


def task_prompt(payload: TaskInput) -> str:
    """An executor's only view: its task, its dependencies' results, and a previous error."""
    task = payload["task"]
    lines = [f"Task {task['id']}: {task['description']}"]
    if task.get("tool") and task["tool"] != "none":
        lines.append(f"Tool category: {task['tool']}")
    for dep_id, result in payload["dependencies"].items():
        lines.append(f"Result of task {dep_id}: {result}")
    if payload["previous_error"]:
        lines.append(
            f"Attempt {payload['attempt']}: the previous attempt failed with: "
            f"{payload['previous_error']}. Try again."
        )
    return "\n".join(lines)


def results_report(question: str, plan: Plan, runs: Mapping[str, TaskRun]) -> str:
    """The question and what each task of the plan came to, for the joiner and replanner."""
    lines = [f"Question: {question}", f"Plan reasoning: {plan.reasoning}", "Results:"]
    for task in plan.tasks:
        run = runs.get(task.id)
        if run is None or run["status"] in ("pending", "running"):
            waits = ", ".join(task.depends_on) or "nothing"
            lines.append(f"- {task.id} ({task.description}): not run; it waits on {waits}")
        elif run["status"] == "done":
            lines.append(f"- {task.id} ({task.description}): {run['result']}")
        else:
            lines.append(f"- {task.id} ({task.description}): FAILED after "
                         f"{run['attempts']} attempt(s): {run['error']}")  # fmt: skip
    return "\n".join(lines)


def replan_request(report: str, feedback: str) -> str:
    """What the planner is told when the joiner asks for a new plan."""
    return (f"{report}\n\nA new plan is needed: {feedback}\nReply with a new Plan. Results "
            "above are kept; a task of the new plan cannot see them unless you repeat what "
            "it needs in its description.")  # fmt: skip
