"""The plan-and-execute part of `graphrelay demo`: the plan, each task's status as it changes,
and the answer, read from the thread's state through the API."""

from __future__ import annotations

import time
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

PLAN_QUESTION = "Index our docs and fetch the API description, then tell me how resuming works."


def converse_plan(client: httpx.Client, console: Console, timeout: float = 300) -> str:
    """Ask the `planner` graph PLAN_QUESTION and print what it does; the answer."""
    thread_id = _ok(client.post("/threads", json={"metadata": {"source": "demo"}}))["thread_id"]
    console.print(f"[bold]you (to the planner):[/bold] {PLAN_QUESTION}")
    run_input = {"messages": [{"role": "user", "content": PLAN_QUESTION}]}
    _ok(client.post(f"/threads/{thread_id}/runs",
                    json={"assistant_id": "planner", "input": run_input}))  # fmt: skip
    started, seen = time.monotonic(), _Seen()
    deadline = started + timeout
    while time.monotonic() < deadline:
        status = _ok(client.get(f"/threads/{thread_id}"))["status"]
        state = _ok(client.get(f"/threads/{thread_id}/state"))
        # A quick call can suspend and resume between two polls: its interrupt is still in
        # the history.
        history = _ok(client.post(f"/threads/{thread_id}/history", json={"limit": 100}))
        seen.report(console, [*reversed(history), state], time.monotonic() - started)
        if status == "error":
            raise RuntimeError("the planner's run ended in an error; see the API log")
        if status == "idle" and not state["interrupts"]:
            console.print(task_table(state["values"]))
            return _answer(state["values"])
        time.sleep(0.05)
    raise TimeoutError(f"the planner gave no answer after {timeout} s")


class _Seen:
    """The plan and task statuses printed so far."""

    def __init__(self) -> None:
        self.plan: dict[str, Any] | None = None
        self.statuses: dict[str, str] = {}
        self.pending: set[str] = set()

    def report(self, console: Console, states: list[dict[str, Any]], elapsed: float) -> None:
        """Print what is new in `states` (oldest first, the current one last)."""
        values = states[-1]["values"]
        plan = values.get("plan")
        if plan and plan != self.plan:
            self.plan, self.statuses = plan, {}
            console.print(plan_table(plan))
        for state in states:
            self._interrupts(console, state, elapsed)
        for task_id, run in (values.get("tasks") or {}).items():
            if self.statuses.get(task_id) != run["status"]:
                self.statuses[task_id] = run["status"]
                console.print(f"{elapsed:6.2f}s  task [bold]{task_id}[/bold] {_styled(run)}")

    def _interrupts(self, console: Console, state: dict[str, Any], elapsed: float) -> None:
        for item in state["interrupts"]:
            if item["id"] not in self.pending:
                self.pending.add(item["id"])
                value = item["value"]
                console.print(f"{elapsed:6.2f}s  [yellow]⏸  suspended[/yellow] on "
                              f"{value['tool']} ({value['queue']} queue)")  # fmt: skip


def plan_table(plan: dict[str, Any]) -> Table:
    """The plan's tasks: id, tool, dependencies, description."""
    table = Table(title="plan", caption=plan["reasoning"])
    for column in ("task", "tool", "depends on", "description"):
        table.add_column(column)
    for task in plan["tasks"]:
        table.add_row(task["id"], task["tool"], ", ".join(task["depends_on"]) or "—",
                      task["description"])  # fmt: skip
    return table


def task_table(values: dict[str, Any]) -> Table:
    """Each task's final status, attempts and (clipped) result or error."""
    table = Table(title="tasks (from the thread state)")
    for column in ("task", "status", "attempts", "result or error"):
        table.add_column(column)
    for task_id, run in (values.get("tasks") or {}).items():
        text = run["error"] or run["result"] or ""
        table.add_row(task_id, run["status"], str(run["attempts"]), _clip(text))
    return table


def _styled(run: dict[str, Any]) -> str:
    colour = {"running": "yellow", "done": "green", "failed": "red"}.get(run["status"], "dim")
    extra = f" (attempt {run['attempts']})" if run["attempts"] > 1 else ""
    return f"[{colour}]{run['status']}[/{colour}]{extra}"


def _clip(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _answer(values: dict[str, Any]) -> str:
    for message in reversed(values.get("messages", [])):
        if message.get("type") == "ai" and message.get("content"):
            return str(message["content"])
    raise RuntimeError("the planner finished without an answer")


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url.path} answered "
                           f"{response.status_code}: {response.text}")  # fmt: skip
    return response.json()


def answer_panel(answer: str) -> Panel:
    """The planner's answer, boxed."""
    return Panel(answer, title="plan-and-execute answer", border_style="green")
