"""`graphrelay demo`: the example agent end to end, with no servers and no API keys.

Starts the API and an io and a cpu worker as child processes on the embedded profile, asks
the scripted agent to index `docs/` (on the cpu worker) and answer from the index, and prints
every suspend and resume with timings as it watches the thread, then the ledger's record of
each background call and the answer. Then the scripted planner lays out a plan whose first two
tasks run at once on the cpu and io workers; the demo prints the plan, each task's status as
it changes, and the answer.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from graphrelay.backends import open_ledger
from graphrelay.cli.plan_demo import answer_panel, converse_plan
from graphrelay.errors import DemoError
from graphrelay.testing.processes import free_port, spawn, stopping, wait_for_log, wait_healthy

console = Console()


@dataclass
class Watch:
    """What the demo has seen of the thread so far."""

    started: float = field(default_factory=time.monotonic)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    suspended_at: dict[str, float] = field(default_factory=dict)

    def elapsed(self) -> str:
        """Seconds since the run started, for log lines."""
        return f"{time.monotonic() - self.started:6.2f}s"


def run_demo(docs: Path, question: str, *, keep_data: bool = False) -> None:
    """Run the demo; raises DemoError on any failure."""
    docs = docs.resolve()
    if not docs.is_dir():
        raise DemoError(f"{docs} is not a folder; run from the repository root or pass --docs")
    data_dir = Path(tempfile.mkdtemp(prefix="graphrelay-demo-"))
    port = free_port()
    env = {
        "GRAPHRELAY_PROFILE": "embedded",
        "GRAPHRELAY_DATA_DIR": str(data_dir),
        "GRAPHRELAY_API_PORT": str(port),
        "GRAPHRELAY_MODEL": "scripted:demo",
        "GRAPHRELAY_PLANNER_MODEL": "scripted:plan_demo",
        "GRAPHRELAY_EXECUTOR_MODEL": "scripted:plan_demo",
        "GRAPHRELAY_GRAPHS": json.dumps(
            {
                "agent": "graphrelay.examples.agent:build_graph",
                "planner": "graphrelay.graphs.plan_execute:build_graph",
            }
        ),
        "GRAPHRELAY_DEMO_DOCS": str(docs),
    }
    logs = data_dir / "logs"
    try:
        with console.status("starting the API and the io and cpu workers…"):
            api = spawn(["serve", "--log-level", "warning"], env, logs / "api.log")
            io = spawn(["worker", "--pool", "io"], env, logs / "worker-io.log")
            cpu = spawn(["worker", "--pool", "cpu"], env, logs / "worker-cpu.log")
            children = [api, io, cpu]
        with stopping(children):
            base_url = f"http://127.0.0.1:{port}"
            with console.status("waiting for the API and the workers to be ready…"):
                wait_healthy(base_url, api)
                wait_for_log(logs / "worker-io.log", " ready.", io)
                wait_for_log(logs / "worker-cpu.log", " ready.", cpu)
            console.print(f"[dim]API on {base_url}, workers ready; data in {data_dir}[/dim]")
            thread_id, answer = _converse(base_url, question)
            console.print(_calls_table(data_dir, thread_id))
            console.print(Panel(answer, title="final answer", border_style="green"))
            with httpx.Client(base_url=base_url, timeout=30) as client:
                console.print(answer_panel(converse_plan(client, console)))
        console.print("[dim]children stopped[/dim]")
    except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
        raise DemoError(f"{exc} (logs in {logs})") from exc
    finally:
        if not keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)


def _converse(base_url: str, question: str, timeout: float = 300) -> tuple[str, str]:
    """Ask `question` on a new thread and watch it to the end; (thread id, answer)."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        thread = _ok(client.post("/threads", json={"metadata": {"source": "demo"}}))
        thread_id = thread["thread_id"]
        console.print(f"[bold]you:[/bold] {question}")
        run_input = {"messages": [{"role": "user", "content": question}]}
        _ok(client.post(f"/threads/{thread_id}/runs",
                        json={"assistant_id": "agent", "input": run_input}))  # fmt: skip
        watch = Watch()
        deadline = time.monotonic() + timeout
        with console.status("agent thinking…") as status:
            while time.monotonic() < deadline:
                # Status before state: a state read after "idle" is the final one.
                thread_status = _ok(client.get(f"/threads/{thread_id}"))["status"]
                state = _ok(client.get(f"/threads/{thread_id}/state"))
                _report_changes(watch, state)
                if thread_status == "error":
                    raise RuntimeError("the run ended in an error; see the API log")
                if thread_status == "idle" and not state["interrupts"]:
                    return thread_id, _final_answer(state)
                status.update(_status_line(watch))
                time.sleep(0.05)
    raise TimeoutError(f"no answer after {timeout} s")


def _calls_table(data_dir: Path, thread_id: str) -> Table:
    ledger = open_ledger(f"sqlite:///{data_dir / 'ledger.sqlite'}")
    table = Table(title="background calls (from the ledger)")
    for column in ("tool", "queue", "status", "executions", "dispatch → result"):
        table.add_column(column)
    for record in ledger.for_thread(thread_id):
        took = (
            "" if record.finished_at is None else f"{record.finished_at - record.created_at:.2f}s"
        )
        table.add_row(record.tool, record.queue, record.status.value.upper(),
                      str(record.attempts), took)  # fmt: skip
    ledger.close()
    return table


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url.path} answered "
                           f"{response.status_code}: {response.text}")  # fmt: skip
    return response.json()


def _report_changes(watch: Watch, state: dict[str, Any]) -> None:
    now_pending = {item["id"]: item["value"] for item in state["interrupts"]}
    for interrupt_id, value in now_pending.items():
        if interrupt_id not in watch.pending:
            watch.suspended_at[interrupt_id] = time.monotonic()
            console.print(f"[yellow]{watch.elapsed()} ⏸  suspended[/yellow] on "
                          f"[bold]{value['tool']}[/bold] ({value['queue']} queue, task "
                          f"{value['task_id'][:15]}…); no process waits for it")  # fmt: skip
    for interrupt_id, value in watch.pending.items():
        if interrupt_id not in now_pending:
            waited = time.monotonic() - watch.suspended_at[interrupt_id]
            console.print(f"[green]{watch.elapsed()} ▶  resumed[/green] after "
                          f"[bold]{value['tool']}[/bold] finished "
                          f"({waited:.2f}s suspended)")  # fmt: skip
    watch.pending = now_pending


def _status_line(watch: Watch) -> str:
    if not watch.pending:
        return "agent thinking…"
    tools = ", ".join(f"{value['tool']} on {value['queue']}" for value in watch.pending.values())
    return f"suspended; waiting for {tools}…"


def _final_answer(state: dict[str, Any]) -> str:
    messages = state["values"].get("messages", [])
    for message in reversed(messages):
        if message.get("type") == "ai" and message.get("content"):
            return str(message["content"])
    raise RuntimeError("the run finished without an answer")
