"""The API under `langgraph-sdk`: run latency, and many runs suspended on background tools.

    uv run python -m benchmarks.api_runs [--runs 300] [--wait 5] [--latency-runs 200]

Starts, on the production profile (RabbitMQ, Redis), one `graphrelay serve` and one io worker
as child processes, on a fresh RabbitMQ vhost and Redis key prefix, and drives them with the
SDK's async client only. It prints:

(a) `runs.wait` latency on fresh threads for a graph that does no work, p50 and p99, against
    the same graph invoked in this process with the same Redis checkpointer (the floor);
(b) the makespan of N runs started at once, each an agent that calls a background tool
    waiting W seconds, against W itself (the critical path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from langgraph_sdk import get_client
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from benchmarks.deployment import REDIS_URL, REPO, api_and_io_worker, forget
from graphrelay.backends.redis.saver import RedisSaver

T = TypeVar("T")
STREAMS_PER_CLIENT = 50
console = Console()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="runs started at once in (b)")
    parser.add_argument("--wait", type=float, default=5.0, help="seconds each tool waits in (b)")
    parser.add_argument("--latency-runs", type=int, default=200, help="runs.wait calls in (a)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


@contextmanager
def deployment(wait: float) -> Iterator[str]:
    """API + io worker serving the example agent and the no-work graph; yields the API URL."""
    with api_and_io_worker(
        REPO / "benchmarks" / "api_script.json",
        GRAPHRELAY_GRAPHS=json.dumps({"agent": "graphrelay.examples.agent:build_graph",
                                      "noop": "benchmarks.graphs:build_noop"}),
        GRAPHRELAY_IO_CONCURRENCY="1000", BENCH_WAIT_SECONDS=str(wait),
    ) as url:  # fmt: skip
        yield url


async def wait_latency(url: str, runs: int) -> list[float]:
    """ms of `runs.wait` (thread already created) on the no-work graph, one after another."""
    client = get_client(url=url, api_key=None)
    samples = []
    for _ in range(runs):
        thread_id = (await client.threads.create())["thread_id"]
        start = time.perf_counter()
        await client.runs.wait(thread_id, "noop", input={})
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def floor_latency(runs: int) -> list[float]:
    """ms of the same graph invoked in this process with the same Redis checkpointer."""
    from benchmarks.graphs import build_noop
    from graphrelay.config import Settings

    prefix = f"bench-floor-{uuid.uuid4().hex[:8]}"
    saver = RedisSaver(REDIS_URL, prefix=f"{prefix}:cp")
    graph = build_noop(saver, Settings())
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await graph.ainvoke({}, {"configurable": {"thread_id": str(uuid.uuid4())}})
        samples.append((time.perf_counter() - start) * 1000)
    saver.close()
    forget(prefix)
    return samples


async def bounded(calls: list[Coroutine[Any, Any, T]], limit: int = 50) -> list[T]:
    """Await all `calls`, at most `limit` at a time (the SDK's HTTP pool is finite)."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Coroutine[Any, Any, T]) -> T:
        async with gate:
            return await call

    return await asyncio.gather(*(one(call) for call in calls))


async def makespan(url: str, runs: int) -> tuple[float, int]:
    """Seconds from the first run started to the last answer; and how many answered.

    Each thread is watched with `threads.join_stream`, as a client waiting for an answer
    would: the answer is the first `values` event whose last message is the agent's reply.
    (Polling `threads.get` instead loaded the API with thousands of state reads.)
    """
    client = get_client(url=url, api_key=None)
    created = await bounded([client.threads.create() for _ in range(runs)])
    threads = [thread["thread_id"] for thread in created]
    # httpx pools 100 connections per client: 50 streams per client leaves room.
    watchers = [get_client(url=url, api_key=None) for _ in range(0, runs, STREAMS_PER_CLIENT)]
    subscribed, all_subscribed = [0], asyncio.Event()
    answered: dict[str, float] = {}

    async def watch(watcher: Any, thread_id: str) -> None:
        async for part in await watcher.threads.join_stream(thread_id):
            if part.event == "metadata":
                subscribed[0] += 1
                if subscribed[0] == runs:
                    all_subscribed.set()
            elif part.event == "values" and _answered(part.data):
                answered[thread_id] = time.perf_counter()
                return

    tasks = [asyncio.create_task(watch(watchers[n // STREAMS_PER_CLIENT], thread_id))
             for n, thread_id in enumerate(threads)]  # fmt: skip
    await all_subscribed.wait()
    question = {"messages": [{"role": "user", "content": "wait for it"}]}
    start = time.perf_counter()
    await bounded([client.runs.create(t, "agent", input=question) for t in threads])
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{runs} runs suspended on background tools", total=runs)
        while len(answered) < runs and time.perf_counter() - start < 300:
            await asyncio.sleep(0.5)
            progress.update(task, completed=len(answered))
    for watching in tasks:
        watching.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return max(answered.values(), default=start + 300) - start, len(answered)


def _answered(values: dict[str, Any]) -> bool:
    messages = values.get("messages", [])
    return bool(messages) and str(messages[-1].get("content", "")).startswith("done:")


def _percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


def main() -> None:
    """Run both measurements and print them with their baselines."""
    args = _arguments()
    with deployment(args.wait) as url:
        console.print(
            f"[dim]API {url}, io worker ready (production profile, Redis, RabbitMQ)[/dim]"
        )
        api = asyncio.run(wait_latency(url, args.latency_runs))
        floor = asyncio.run(floor_latency(args.latency_runs))
        seconds, answered = asyncio.run(makespan(url, args.runs))
    figures = {
        "wait_p50_ms": statistics.median(api), "wait_p99_ms": _percentile(api, 99),
        "floor_p50_ms": statistics.median(floor), "floor_p99_ms": _percentile(floor, 99),
        "runs": args.runs, "answered": answered, "wait_seconds": args.wait,
        "makespan_s": seconds, "makespan_vs_critical_path": seconds / args.wait,
    }  # fmt: skip
    table = Table(title="graphrelay API through langgraph-sdk")
    for column in ("measure", "graphrelay", "baseline in this run", "ratio"):
        table.add_column(column)
    table.add_row("(a) runs.wait p50, no-work graph", f"{figures['wait_p50_ms']:.1f} ms",
                  f"{figures['floor_p50_ms']:.1f} ms (in-process ainvoke)",
                  f"{figures['wait_p50_ms'] / figures['floor_p50_ms']:.1f}x")  # fmt: skip
    table.add_row("(a) runs.wait p99", f"{figures['wait_p99_ms']:.1f} ms",
                  f"{figures['floor_p99_ms']:.1f} ms", "")  # fmt: skip
    table.add_row(f"(b) makespan, {args.runs} runs x {args.wait:g} s background call",
                  f"{seconds:.2f} s ({answered}/{args.runs} answered)",
                  f"{args.wait:g} s (critical path)", f"{seconds / args.wait:.2f}x")  # fmt: skip
    console.print(table)
    latency_met = figures["wait_p50_ms"] <= 10
    makespan_met = seconds <= 8 and answered == args.runs
    console.print(f"targets: (a) p50 <= 10 ms: {'met' if latency_met else 'not met'}; "
                  f"(b) <= 8 s: {'met' if makespan_met else 'not met'}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(REPO))
    main()
