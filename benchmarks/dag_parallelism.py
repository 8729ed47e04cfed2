"""Plan-and-execute: does a parallel task DAG finish in its critical path?

    uv run python -m benchmarks.dag_parallelism [--seconds 2] [--json out.json]

Starts, on the production profile (RabbitMQ, Redis), one `graphrelay serve` and one io worker
as child processes on a fresh vhost and key prefix. The scripted model plays planner, executors
and joiner. Each plan's tasks are background calls of `--seconds` d on the io queue:

- k = 1, 4, 16 independent tasks (critical path d),
- a chain of 4 (critical path 4d), a diamond a → (b, c) → d (critical path 3d).

Each plan runs on the parallel graph and on a sequential plan-and-execute baseline (the same
graph, one task at a time), one thread after another. Makespan: from `runs.create` until the
thread is idle with nothing pending, polled every 20 ms. Target: makespan ≤ 1.15 x critical
path + 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient
from rich.console import Console
from rich.table import Table

from benchmarks.deployment import api_and_io_worker

console = Console(width=120)

Tasks = list[tuple[str, list[str]]]  # (id, dependencies)


def shapes() -> dict[str, Tasks]:
    """Plan shapes by name."""
    independent: dict[str, Tasks] = {
        f"k={k}": [(f"t{i}", []) for i in range(k)] for k in (1, 4, 16)
    }
    chain: Tasks = [("c0", []), ("c1", ["c0"]), ("c2", ["c1"]), ("c3", ["c2"])]
    diamond: Tasks = [("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])]
    return {**independent, "chain of 4": chain, "diamond": diamond}


def depth(tasks: Tasks) -> int:
    """Tasks on the longest dependency chain."""
    deps = dict(tasks)
    memo: dict[str, int] = {}

    def chain(task_id: str) -> int:
        if task_id not in memo:
            memo[task_id] = 1 + max((chain(d) for d in deps[task_id]), default=0)
        return memo[task_id]

    return max(chain(task_id) for task_id, _ in tasks)


def script(seconds: float) -> dict[str, Any]:
    """Planner, joiner and executor scripts for every shape."""
    scripts: dict[str, Any] = {
        "wait": [
            {"tool_calls": [{"name": "wait_seconds", "args": {"seconds": seconds}}]},
            {"content": "{tool:wait_seconds}"},
        ]
    }
    for name, tasks in shapes().items():
        plan = {"reasoning": f"the {name} plan", "tasks": [
            {"id": i, "description": f"wait for task {i}", "tool": "wait_seconds",
             "depends_on": deps} for i, deps in tasks
        ]}  # fmt: skip
        scripts[f"Plan:[{name}]"] = [{"json": plan}]
        scripts[f"Decision:[{name}]"] = [{"json": {"reasoning": "all done", "action": "answer",
                                                   "answer": "done", "feedback": ""}}]  # fmt: skip
    return {"scripts": scripts}


@contextmanager
def deployment(seconds: float) -> Iterator[str]:
    """API + io worker serving both plan-and-execute graphs; yields the API's URL."""
    script_file = Path(tempfile.mkdtemp(prefix="graphrelay-bench-")) / "script.json"
    script_file.write_text(json.dumps(script(seconds)))
    graphs = {
        "parallel": "graphrelay.graphs.plan_execute:build_graph",
        "sequential": "graphrelay.graphs.plan_execute:build_sequential_graph",
    }
    with api_and_io_worker(script_file, GRAPHRELAY_GRAPHS=json.dumps(graphs)) as url:
        yield url


def makespan(client: SyncLangGraphClient, graph: str, name: str, timeout: float = 600) -> float:
    """Seconds from starting a run on a fresh thread until it is idle with nothing pending."""
    thread_id = client.threads.create()["thread_id"]
    question: Any = [{"role": "user", "content": f"run the [{name}] plan"}]
    start = time.perf_counter()
    client.runs.create(thread_id, graph, input={"messages": question})
    while time.perf_counter() - start < timeout:
        status = client.threads.get(thread_id)["status"]
        if status == "error":
            raise RuntimeError(f"{graph} run of {name} ended in error")
        if status == "idle" and not client.threads.get_state(thread_id)["interrupts"]:
            elapsed = time.perf_counter() - start
            _check_done(client, thread_id, graph, name)
            return elapsed
        time.sleep(0.02)
    raise TimeoutError(f"{graph} run of {name} did not finish in {timeout} s")


def _check_done(client: SyncLangGraphClient, thread_id: str, graph: str, name: str) -> None:
    values: dict[str, Any] = dict(client.threads.get_state(thread_id)["values"])  # type: ignore[arg-type]
    statuses = {run["status"] for run in values["tasks"].values()}
    if values.get("phase") != "answered" or statuses != {"done"}:
        raise RuntimeError(f"{graph} run of {name} ended as {values.get('phase')}: {statuses}")


@dataclass
class Row:
    """One plan shape's figures."""

    plan: str
    tasks: int
    critical_path_s: float
    target_s: float
    parallel_s: float
    sequential_s: float

    @property
    def met(self) -> bool:
        """Parallel makespan within the target."""
        return self.parallel_s <= self.target_s


def measure(url: str, seconds: float) -> list[Row]:
    """Every shape on both graphs, one thread at a time."""
    client = get_sync_client(url=url, api_key=None)
    makespan(client, "parallel", "k=1")  # warm-up: imports, connections, first checkpoints
    rows = []
    for name, tasks in shapes().items():
        critical = depth(tasks) * seconds
        parallel = makespan(client, "parallel", name)
        sequential = makespan(client, "sequential", name)
        rows.append(Row(name, len(tasks), critical, 1.15 * critical + 0.5, parallel, sequential))
        console.print(f"[dim]{name}: parallel {parallel:.2f} s, sequential {sequential:.2f} s")
    return rows


def report(rows: list[Row], seconds: float) -> Table:
    """The figures as a table."""
    table = Table(title=f"plan-and-execute makespan, each task a {seconds:g} s io call")
    for column in ("plan", "tasks", "critical path", "target", "parallel", "÷ critical path",
                   "sequential", "speed-up", "target met"):  # fmt: skip
        table.add_column(column, justify="left" if column == "plan" else "right")
    for row in rows:
        table.add_row(
            row.plan, str(row.tasks), f"{row.critical_path_s:.2f} s", f"{row.target_s:.2f} s",
            f"{row.parallel_s:.2f} s", f"{row.parallel_s / row.critical_path_s:.2f}x",
            f"{row.sequential_s:.2f} s", f"{row.sequential_s / row.parallel_s:.2f}x",
            "yes" if row.met else "NO",
        )  # fmt: skip
    return table


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="each task's duration d")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(f"[dim]load average {load}; {os.cpu_count()} cores[/dim]")
    with deployment(args.seconds) as url:
        rows = measure(url, args.seconds)
    console.print(report(rows, args.seconds))
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2))


if __name__ == "__main__":
    main()
