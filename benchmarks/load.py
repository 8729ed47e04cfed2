"""Load: many threads with background calls, and many threads suspended at once.

    uv run python -m benchmarks.load [--threads 1000] [--wait 1] [--suspended 10000]

Runs on the production profile (RabbitMQ, Redis db 14), API and io worker as child
processes, driven through `langgraph-sdk` only. It prints:

(a) `--threads` threads started at once, each an agent making two background calls of
    `--wait` s: completed, lost (a thread not answered, or a call never applied) and
    duplicated (a call run twice, or a result applied twice), with p50/p99 end-to-end
    (run created → last result applied) against `--wait` itself, the floor.
(b) `--suspended` threads suspended at once on a call whose worker is not running yet: the
    API's resident memory before and after, its CPU while they all wait, and, once a worker
    starts, how many threads per second get resumed to their answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph_sdk import get_client
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from benchmarks.api_runs import bounded
from benchmarks.deployment import REDIS_URL, REPO, deployment
from graphrelay.backends.redis.ledger import RedisLedger
from graphrelay.bridge.calls import SWEPT_STATUSES, CallStatus

console = Console()
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SCRIPT = REPO / "benchmarks" / "load_script.json"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1000, help="threads in (a)")
    parser.add_argument("--wait", type=float, default=1.0, help="seconds per call in (a)")
    parser.add_argument("--suspended", type=int, default=10_000, help="threads in (b)")
    return parser.parse_args()


async def _start_threads(url: str, count: int, question: str) -> dict[str, float]:
    """Create `count` threads and start a run on each; thread id → when its run was created."""
    client = get_client(url=url, api_key=None)
    message: dict[str, Any] = {"messages": [{"role": "user", "content": question}]}

    async def one() -> tuple[str, float]:
        thread_id = (await client.threads.create())["thread_id"]
        started = time.time()
        await client.runs.create(thread_id, "agent", input=message)
        return thread_id, started

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"starting {count} threads", total=count)

        async def counted() -> tuple[str, float]:
            result = await one()
            progress.advance(task)
            return result

        return dict(await bounded([counted() for _ in range(count)], limit=64))


def _open_calls(ledger: RedisLedger) -> int:
    """Calls not applied yet (every such status is indexed)."""
    return sum(len(ledger.stale(s, time.time() + 3600, 10**6)) for s in SWEPT_STATUSES)


def _wait_until(what: str, total: int, left: Callable[[], int], timeout: float) -> float:
    """Poll `left()` down to 0 with a progress bar; the seconds it took."""
    start = time.monotonic()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(what, total=total)
        while (remaining := left()) and time.monotonic() - start < timeout:
            progress.update(task, completed=total - remaining)
            time.sleep(0.5)
    return time.monotonic() - start


@dataclass
class ManyCalls:
    """Figures of part (a)."""

    completed: int
    lost: int
    duplicated: int
    p50: float
    p99: float


async def _final_states(url: str, thread_ids: list[str]) -> list[dict[str, Any]]:
    client = get_client(url=url, api_key=None)
    states = await bounded([client.threads.get_state(t) for t in thread_ids], limit=64)
    return [dict(s) for s in states]


def many_calls(threads: int, wait: float) -> ManyCalls:
    """(a): `threads` agents with two background calls each, all started at once."""
    with deployment(SCRIPT, BENCH_WAIT_SECONDS=str(wait),
                    GRAPHRELAY_IO_CONCURRENCY="1000") as running:  # fmt: skip
        running.start("api")
        running.start("io")
        ledger = RedisLedger(REDIS_URL, running.prefix)
        started = asyncio.run(_start_threads(running.url, threads, "two calls"))
        _wait_until(f"{2 * threads} calls applied", 2 * threads,
                    lambda: _open_calls(ledger) or 2 * threads - _applied(ledger, started),
                    timeout=600)  # fmt: skip
        states = asyncio.run(_final_states(running.url, list(started)))
        records = {t: ledger.for_thread(t) for t in started}
        ledger.close()
    durations = [
        max(r.updated_at for r in records[t]) - started[t]
        for t in started
        if len(records[t]) == 2 and all(r.status == CallStatus.APPLIED for r in records[t])
    ]
    answered = sum(_answer(state).startswith("done: ") for state in states)
    duplicated = sum(
        any(r.attempts > 1 for r in records[t]) or _tool_results(state) > 2
        for t, state in zip(started, states, strict=True)
    )
    quantiles = statistics.quantiles(durations, n=100)
    return ManyCalls(min(answered, len(durations)), threads - min(answered, len(durations)),
                     duplicated, quantiles[49], quantiles[98])  # fmt: skip


def _applied(ledger: RedisLedger, started: dict[str, float]) -> int:
    return sum(r.status == CallStatus.APPLIED for t in started for r in ledger.for_thread(t))


def _answer(state: dict[str, Any]) -> str:
    messages = state["values"].get("messages", [])
    return str(messages[-1].get("content", "")) if messages else ""


def _tool_results(state: dict[str, Any]) -> int:
    return sum(m["type"] == "tool" for m in state["values"].get("messages", []))


@dataclass
class Suspended:
    """Figures of part (b)."""

    threads: int
    rss_before_mb: float
    rss_after_mb: float
    cpu_percent_waiting: float
    resumes_per_second: float
    answered: int


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def suspended(count: int, warmup: int = 200) -> Suspended:
    """(b): `count` threads suspended at once, then all resumed by one worker."""
    with deployment(SCRIPT, GRAPHRELAY_IO_CONCURRENCY="200") as running:
        api = running.start("api")
        ledger = RedisLedger(REDIS_URL, running.prefix)
        total = warmup + count
        asyncio.run(_start_threads(running.url, warmup, "one call"))
        _wait_dispatched(ledger, warmup)
        rss_before = _rss_mb(api.pid)
        started = asyncio.run(_start_threads(running.url, count, "one call"))
        _wait_dispatched(ledger, total)
        time.sleep(2)  # let the last runs settle
        rss_after = _rss_mb(api.pid)
        cpu_start, wall_start = _cpu_seconds(api.pid), time.monotonic()
        time.sleep(10)
        cpu = (_cpu_seconds(api.pid) - cpu_start) / (time.monotonic() - wall_start) * 100

        running.start("io")
        elapsed = _wait_until(f"{total} threads resumed", total,
                              lambda: _open_calls(ledger), timeout=1800)  # fmt: skip
        states = asyncio.run(_final_states(running.url, list(started)))
        ledger.close()
    answered = sum(_answer(state).startswith("done: ") for state in states)
    return Suspended(count, rss_before, rss_after, cpu, total / elapsed, answered)


def _wait_dispatched(ledger: RedisLedger, count: int) -> None:
    def left() -> int:
        return count - len(ledger.stale(CallStatus.DISPATCHED, time.time() + 3600, 10**6))

    _wait_until(f"{count} threads suspended", count, left, timeout=1800)


def main() -> None:
    """Run both parts and print their figures."""
    args = _arguments()
    a = many_calls(args.threads, args.wait)
    table = Table(title=f"(a) {args.threads} threads x 2 background calls of {args.wait} s")
    for column in ("completed", "lost", "duplicated", "p50 end-to-end", "p99 end-to-end",
                   "floor (one call)"):  # fmt: skip
        table.add_column(column, justify="right")
    table.add_row(str(a.completed), str(a.lost), str(a.duplicated), f"{a.p50:.2f} s",
                  f"{a.p99:.2f} s", f"{args.wait:.2f} s")  # fmt: skip
    console.print(table)
    console.print(f"p50 / floor: {a.p50 / args.wait:.2f}x; targets: lost = duplicated = 0")

    b = suspended(args.suspended)
    table = Table(title=f"(b) {b.threads} threads suspended at once")
    for column in ("API RSS before", "API RSS after", "growth", "API CPU while waiting",
                   "resumes / s", "answered"):  # fmt: skip
        table.add_column(column, justify="right")
    table.add_row(f"{b.rss_before_mb:.1f} MB", f"{b.rss_after_mb:.1f} MB",
                  f"{b.rss_after_mb - b.rss_before_mb:.1f} MB", f"{b.cpu_percent_waiting:.1f} %",
                  f"{b.resumes_per_second:.0f}", f"{b.answered}/{b.threads}")  # fmt: skip
    console.print(table)
    console.print("targets: growth < 50 MB; no CPU while waiting")


if __name__ == "__main__":
    main()
