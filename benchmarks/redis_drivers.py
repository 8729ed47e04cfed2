"""CPU per Redis round trip from asyncio: redis-py's asyncio client against `AsyncWire`.

    uv run python -m benchmarks.redis_drivers [--coroutines 300] [--round-trips 20]

Each of N coroutines makes R pairs of round trips at once, as the API's runs do: a MULTI/EXEC
of a SET and a ZADD, then a GET. Prints the CPU this process spent per round trip with each
driver (redis-py's blocking pool, as `redis_clients.async_client` makes it, is the baseline),
best of three rounds each, interleaved. Uses db 15 under a fresh key prefix, removed after.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import uuid
from collections.abc import Awaitable, Callable

import uvloop
from graphrelay.backends.redis.async_wire import AsyncWire
from rich.console import Console
from rich.table import Table

from benchmarks.deployment import forget
from graphrelay.backends.redis.clients import async_client

URL = "redis://127.0.0.1:6379/15"
console = Console()
Workload = Callable[[int, int, str], Awaitable[None]]


async def with_redis_py(coroutines: int, round_trips: int, prefix: str) -> None:
    client = async_client(URL)

    async def one(n: int) -> None:
        for i in range(round_trips):
            async with client.pipeline(transaction=True) as pipe:
                pipe.set(f"{prefix}:{n}", "x" * 200)
                pipe.zadd(f"{prefix}:z", {str(n): i})
                await pipe.execute()
            await client.get(f"{prefix}:{n}")

    await asyncio.gather(*(one(n) for n in range(coroutines)))
    await client.aclose()


async def with_async_wire(coroutines: int, round_trips: int, prefix: str) -> None:
    wire = AsyncWire(URL)

    async def one(n: int) -> None:
        for i in range(round_trips):
            await wire.execute([("SET", f"{prefix}:{n}", "x" * 200),
                                ("ZADD", f"{prefix}:z", i, n)], atomic=True)  # fmt: skip
            await wire.call("GET", f"{prefix}:{n}")

    await asyncio.gather(*(one(n) for n in range(coroutines)))
    wire.close()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(workload: Workload, coroutines: int, round_trips: int, prefix: str) -> float:
    """µs of CPU per round trip."""
    before = _cpu()
    uvloop.run(workload(coroutines, round_trips, prefix))
    return (_cpu() - before) / (coroutines * round_trips * 2) * 1e6


def main() -> None:
    """Interleave three rounds of each driver; print the best of each and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coroutines", type=int, default=300)
    parser.add_argument("--round-trips", type=int, default=20)
    args = parser.parse_args()
    prefix = f"bench-drivers-{uuid.uuid4().hex[:8]}"
    best = {"redis-py asyncio (baseline)": float("inf"), "AsyncWire": float("inf")}
    try:
        for _ in range(3):
            for name, workload in zip(best, (with_redis_py, with_async_wire), strict=True):
                cost = measure(workload, args.coroutines, args.round_trips, prefix)
                best[name] = min(best[name], cost)
    finally:
        forget(prefix, URL)
    table = Table(title=f"{args.coroutines} coroutines x {args.round_trips} x 2 round trips")
    table.add_column("driver")
    table.add_column("CPU per round trip (best of 3)")
    for name, cost in best.items():
        table.add_row(name, f"{cost:.0f} µs")
    console.print(table)
    baseline, ours = best.values()
    console.print(
        f"AsyncWire costs {ours / baseline:.2f}x the baseline ({baseline / ours:.1f}x less)"
    )


if __name__ == "__main__":
    main()
