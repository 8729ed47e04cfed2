"""Compares LangGraph checkpointers on a long agent loop, all measured in one run.

Workload: a StateGraph with one node that loops back to itself for S supersteps, each step
appending one random 500-character message to an `Annotated[list[str], operator.add]` history
channel. T threads are run one after another with the same sync `graph.invoke` driver for every
saver (after one short untimed warm-up thread), on a freshly opened saver, in R rounds that
interleave the savers so that drifts in the machine's load hit them alike. Per saver it reports:

- ms per superstep: total `invoke` wall time / (S * threads run), median over the rounds;
- `get_state` latency: median (and p90) of 50 `graph.get_state(config)` calls on a finished
  thread per round, pooled over the rounds;
- for Redis-backed savers, Redis memory per thread: the growth of `MEMORY USAGE key SAMPLES 0`
  summed over the saver's keys, divided by the threads run; and, where the saver has the
  server to itself, the growth of INFO `used_memory` divided by the threads run (this also
  counts RediSearch indexes).

Savers: InMemorySaver (the floor), graphrelay's RedisSaver (on the shared Redis, db 15, and on
the private Redis Stack server, so it can be compared with the official saver on the same
server), SqliteSaver, PostgresSaver (on a throwaway database) and the official
`langgraph-checkpoint-redis` RedisSaver (on a private Redis Stack started by
`benchmarks/redis_stack.py`). Every key, file and database made is removed at the end.

Run: cd /work/main && uv run python -m benchmarks.checkpointers [--steps 300] [--threads 5]
     [--rounds 3] [--json results.json]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import importlib
import importlib.metadata
import json
import operator
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

import psycopg
import redis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from psycopg import sql
from rich.console import Console
from rich.table import Table

from benchmarks.redis_stack import redis_stack

Durability = Literal["sync", "async", "exit"]

MESSAGE_BYTES = 500
GET_STATE_CALLS = 50
WARMUP_STEPS = 5
RUN_ID = uuid.uuid4().hex[:10]
SHARED_REDIS_URL = "redis://127.0.0.1:6379/15"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

FLOOR = "InMemorySaver"
OURS_SHARED = "graphrelay RedisSaver (shared Redis)"
OURS_STACK = "graphrelay RedisSaver (Redis Stack)"
OFFICIAL = "langgraph-checkpoint-redis RedisSaver"
TARGET_VS_FLOOR = 1.5
TARGET_VS_OFFICIAL = 3.0
TARGET_GET_STATE_MS = 1.0

console = Console() if sys.stdout.isatty() else Console(width=150)
errors = Console(stderr=True)


# -- workload -------------------------------------------------------------------------------


class LoopState(TypedDict):
    """The graph's state: the growing history and how long it should grow."""

    messages: Annotated[list[str], operator.add]
    target: int


def _message() -> str:
    """A random 500-character string (base64 of 375 random bytes)."""
    return base64.b64encode(os.urandom(MESSAGE_BYTES * 3 // 4)).decode()


def _step(state: LoopState) -> dict[str, list[str]]:
    return {"messages": [_message()]}


def _route(state: LoopState) -> str:
    return "step" if len(state["messages"]) < state["target"] else END


def build_graph(saver: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    """One node that appends a message and loops to itself until `target` messages exist."""
    graph = StateGraph(LoopState)
    graph.add_node("step", _step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", _route, ["step", END])
    return graph.compile(checkpointer=saver)


def thread_config(thread_id: str, steps: int) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": steps + 10}


# -- measurement ----------------------------------------------------------------------------


@dataclass
class RedisProbe:
    """Reads how much memory a saver's keys take on its Redis server."""

    client: redis.Redis
    pattern: str
    dedicated: bool  # the saver has the server to itself: used_memory growth is its own

    def key_bytes(self) -> int:
        """`MEMORY USAGE key SAMPLES 0` summed over every key matching `pattern`."""
        total = 0
        batch: list[Any] = []
        for key in self.client.scan_iter(match=self.pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                total += self._usage(batch)
                batch = []
        return total + self._usage(batch)

    def _usage(self, keys: list[Any]) -> int:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        return sum(size or 0 for size in pipe.execute())

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def delete_keys(self) -> int:
        """Delete the keys matching `pattern` (and only those)."""
        deleted = 0
        keys = list(self.client.scan_iter(match=self.pattern, count=1000))
        for start in range(0, len(keys), 500):
            deleted += int(self.client.delete(*keys[start : start + 500]))
        return deleted


@dataclass
class Opened:
    """A ready saver, and a probe on its Redis if it has one."""

    saver: BaseCheckpointSaver[Any]
    probe: RedisProbe | None = None


@dataclass
class Candidate:
    """A saver to measure: how to open it, and what to call it."""

    name: str
    package: str
    backend: str
    open: Callable[[], AbstractContextManager[Opened]]


@dataclass
class Round:
    """One pass of the workload on a freshly opened saver."""

    steps: int
    threads: int = 0
    seconds: float = 0.0
    get_state_ms: list[float] = field(default_factory=list)
    key_bytes_per_thread: float | None = None
    used_memory_per_thread: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ms_per_step(self) -> float:
        return self.seconds * 1000 / (self.steps * self.threads)


@dataclass
class Result:
    """One saver's measurements, summarised over its rounds."""

    name: str
    package: str
    version: str
    backend: str
    steps: int
    rounds: int = 0
    threads: int = 0
    ms_per_step: float | None = None
    ms_per_step_rounds: list[float] = field(default_factory=list)
    get_state_ms_median: float | None = None
    get_state_ms_p90: float | None = None
    redis_key_bytes_per_thread: float | None = None
    redis_used_memory_per_thread: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def _invoke(
    graph: CompiledStateGraph[Any], thread_id: str, steps: int, durability: Durability
) -> None:
    config = thread_config(thread_id, steps)
    out = graph.invoke({"messages": [], "target": steps}, config, durability=durability)
    if len(out["messages"]) != steps:
        raise RuntimeError(f"thread {thread_id} ended with {len(out['messages'])} messages")


def _time_get_state(graph: CompiledStateGraph[Any], thread_id: str, steps: int) -> list[float]:
    config = thread_config(thread_id, steps)
    snapshot = graph.get_state(config)
    if len(snapshot.values["messages"]) != steps or snapshot.next:
        raise RuntimeError(f"get_state on {thread_id} did not return the finished thread")
    samples = []
    for _ in range(GET_STATE_CALLS):
        start = time.perf_counter()
        graph.get_state(config)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _run_threads(
    graph: CompiledStateGraph[Any], result: Round, tag: str, args: argparse.Namespace
) -> str:
    """Run up to `args.threads` threads, stopping before passing the budget; the last id."""
    thread_id = ""
    for index in range(args.threads):
        thread_id = f"bench-{RUN_ID}-{tag}-{index}"
        start = time.perf_counter()
        _invoke(graph, thread_id, result.steps, args.durability)
        result.seconds += time.perf_counter() - start
        result.threads += 1
        per_thread = result.seconds / result.threads
        if index + 1 < args.threads and result.seconds + per_thread > args.budget:
            result.notes.append(
                f"ran {result.threads} of {args.threads} threads: the next would pass the "
                f"{args.budget:.0f} s budget per round ({per_thread:.1f} s per thread)"
            )
            break
    return thread_id


def _note_memory_disagreement(result: Result) -> None:
    keys, used = result.redis_key_bytes_per_thread, result.redis_used_memory_per_thread
    if keys and used and keys > 2 * used:
        result.notes.append(
            f"Σ MEMORY USAGE is {keys / used:.1f}x the used_memory growth: the server shares "
            "data between keys (RedisJSON interns identical strings) that MEMORY USAGE counts "
            "once per key, so used_memory Δ is the real cost"
        )


def measure(opened: Opened, result: Round, tag: str, args: argparse.Namespace) -> None:
    """Fill `result` by running the workload on `opened.saver`."""
    graph = build_graph(opened.saver)
    _invoke(graph, f"warmup-{RUN_ID}-{tag}", WARMUP_STEPS, args.durability)
    probe = opened.probe
    keys_before = probe.key_bytes() if probe else 0
    used_before = probe.used_memory() if probe and probe.dedicated else 0
    last_thread = _run_threads(graph, result, tag, args)
    if probe:
        result.key_bytes_per_thread = (probe.key_bytes() - keys_before) / result.threads
        if probe.dedicated:
            used = probe.used_memory() - used_before
            result.used_memory_per_thread = used / result.threads
    result.get_state_ms = _time_get_state(graph, last_thread, result.steps)


def run_round(candidate: Candidate, index: int, args: argparse.Namespace) -> Round:
    """Open the saver, measure it, close it; an error is recorded, not raised."""
    result = Round(steps=args.steps)
    try:
        with candidate.open() as opened:
            measure(opened, result, f"r{index}", args)
    except Exception as error:
        result.error = f"{type(error).__name__}: {error}"
        errors.print(traceback.format_exc())
    finally:
        gc.collect()
    summary = f"{result.ms_per_step:.3f} ms/superstep" if result.threads else "no thread ran"
    status = f"[red]{result.error}[/]" if result.error else summary
    console.print(
        f"  {candidate.name}: {status} ({result.threads} threads, {result.seconds:.1f} s)"
    )
    return result


def _median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarize(candidate: Candidate, rounds: list[Round]) -> Result:
    """Median over the rounds that finished; the first error, if any round failed."""
    done = [r for r in rounds if r.error is None]
    samples = [sample for r in done for sample in r.get_state_ms]
    per_round = [r.ms_per_step for r in done]
    result = Result(
        name=candidate.name,
        package=candidate.package,
        version=package_version(candidate.package),
        backend=candidate.backend,
        steps=rounds[0].steps,
        rounds=len(done),
        threads=min((r.threads for r in done), default=0),
        ms_per_step=_median(list(per_round)),
        ms_per_step_rounds=per_round,
        get_state_ms_median=statistics.median(samples) if samples else None,
        get_state_ms_p90=statistics.quantiles(samples, n=10)[-1] if len(samples) > 1 else None,
        redis_key_bytes_per_thread=_median([r.key_bytes_per_thread for r in done]),
        redis_used_memory_per_thread=_median([r.used_memory_per_thread for r in done]),
        notes=list(dict.fromkeys(note for r in rounds for note in r.notes)),
        error=next((r.error for r in rounds if r.error), None),
    )
    _note_memory_disagreement(result)
    return result


def run_all(candidates: list[Candidate], args: argparse.Namespace) -> list[Result]:
    """Interleave the savers round by round, so slow drifts of the machine hit them alike."""
    rounds: dict[str, list[Round]] = {candidate.name: [] for candidate in candidates}
    for index in range(args.rounds):
        console.print(f"[bold]round {index + 1} of {args.rounds}[/]")
        for candidate in candidates:
            done = rounds[candidate.name]
            if not any(r.error for r in done):
                done.append(run_round(candidate, index, args))
    return [summarize(candidate, rounds[candidate.name]) for candidate in candidates]


# -- savers ---------------------------------------------------------------------------------


def package_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@contextlib.contextmanager
def open_memory() -> Iterator[Opened]:
    yield Opened(InMemorySaver())


SaverFactory = Callable[..., BaseCheckpointSaver[Any]]


def load_our_saver() -> SaverFactory | None:
    """graphrelay's RedisSaver class, or None when it cannot be imported yet."""
    try:
        module = importlib.import_module("graphrelay.backends.redis.saver")
    except ImportError as error:
        console.print(f"[yellow]Skipping graphrelay RedisSaver: import failed ({error}).[/]")
        return None
    factory: SaverFactory = module.RedisSaver
    return factory


def open_ours(
    factory: SaverFactory, url: str, dedicated: bool
) -> Callable[[], AbstractContextManager[Opened]]:
    @contextlib.contextmanager
    def opener() -> Iterator[Opened]:
        prefix = f"graphrelay-bench-{RUN_ID}-{uuid.uuid4().hex[:6]}"
        saver = factory(url, prefix=prefix)
        probe = RedisProbe(redis.Redis.from_url(url), f"{prefix}*", dedicated)
        with contextlib.ExitStack() as cleanup:  # callbacks run last-first, each one regardless
            cleanup.callback(probe.client.close)
            cleanup.callback(probe.delete_keys)
            close = getattr(saver, "close", None)
            if callable(close):
                cleanup.callback(close)
            yield Opened(saver, probe)

    return opener


def open_official(url: str) -> Callable[[], AbstractContextManager[Opened]]:
    @contextlib.contextmanager
    def opener() -> Iterator[Opened]:
        from langgraph.checkpoint.redis import RedisSaver as OfficialRedisSaver

        client = redis.Redis.from_url(url)
        with OfficialRedisSaver.from_conn_string(url) as saver:
            saver.setup()
            try:
                yield Opened(saver, RedisProbe(client, "*", dedicated=True))
            finally:
                client.close()  # its keys go with the private server when it stops

    return opener


@contextlib.contextmanager
def open_sqlite() -> Iterator[Opened]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    with (
        tempfile.TemporaryDirectory(prefix="graphrelay-bench-") as folder,
        SqliteSaver.from_conn_string(str(Path(folder) / "checkpoints.db")) as saver,
    ):
        saver.setup()
        yield Opened(saver)


@contextlib.contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """Create a fresh PostgreSQL database; yield its URL; drop it afterwards."""
    name = f"graphrelay_bench_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


def open_postgres(admin_url: str) -> Callable[[], AbstractContextManager[Opened]]:
    @contextlib.contextmanager
    def opener() -> Iterator[Opened]:
        from langgraph.checkpoint.postgres import PostgresSaver

        with throwaway_database(admin_url) as url, PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            yield Opened(saver)

    return opener


def redis_version(url: str) -> str:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def postgres_version(admin_url: str) -> str:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


def our_candidates(shared_url: str, stack_url: str | None) -> list[Candidate]:
    """graphrelay's saver on the shared Redis and on the private Redis Stack, where possible."""
    ours = load_our_saver()
    if ours is None:
        return []
    candidates = []
    try:
        where = shared_url.removeprefix("redis://")
        shared = f"Redis {redis_version(shared_url)} {where} (shared)"
        opener = open_ours(ours, shared_url, dedicated=False)
        candidates.append(Candidate(OURS_SHARED, "graphrelay", shared, opener))
    except redis.RedisError as error:
        console.print(f"[yellow]Skipping graphrelay RedisSaver on {shared_url}: {error}[/]")
    if stack_url:
        private = f"Redis Stack {redis_version(stack_url)} (private)"
        opener = open_ours(ours, stack_url, dedicated=True)
        candidates.append(Candidate(OURS_STACK, "graphrelay", private, opener))
    return candidates


def build_candidates(args: argparse.Namespace, stack_url: str | None) -> list[Candidate]:
    """Every saver to measure, in run order; the ones that cannot run are left out."""
    candidates = [Candidate(FLOOR, "langgraph-checkpoint", "process memory", open_memory)]
    candidates += our_candidates(args.redis_url, stack_url)
    sqlite_backend = f"SQLite {sqlite3.sqlite_version} (temp file)"
    candidates.append(
        Candidate("SqliteSaver", "langgraph-checkpoint-sqlite", sqlite_backend, open_sqlite)
    )
    try:
        pg_backend = f"PostgreSQL {postgres_version(args.postgres_url)} (temp db)"
        candidates.append(
            Candidate(
                "PostgresSaver",
                "langgraph-checkpoint-postgres",
                pg_backend,
                open_postgres(args.postgres_url),
            )
        )
    except psycopg.Error as error:
        console.print(f"[yellow]Skipping PostgresSaver: {error}[/]")
    if stack_url:
        stack_backend = f"Redis Stack {redis_version(stack_url)} (private)"
        candidates.append(
            Candidate(
                OFFICIAL,
                "langgraph-checkpoint-redis",
                stack_backend,
                open_official(stack_url),
            )
        )
    return candidates


# -- report ---------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _size(value: float | None) -> str:
    if value is None:
        return "—"
    for unit in ("B", "KiB", "MiB"):
        if abs(value) < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _spread(r: Result) -> str:
    if r.ms_per_step is None:
        return "[red]error[/]" if r.error else "—"
    if len(r.ms_per_step_rounds) < 2:
        return _ms(r.ms_per_step)
    low, high = min(r.ms_per_step_rounds), max(r.ms_per_step_rounds)
    return f"{_ms(r.ms_per_step)} ({low:.2f}..{high:.2f})"


def results_table(results: list[Result]) -> Table:
    table = Table(title="Checkpointers: per-superstep cost, get_state latency, Redis memory")
    for column in ("saver", "version", "backend"):
        table.add_column(column)
    table.add_column("rounds x\nthreads x steps", justify="right")
    table.add_column("ms / superstep\nmedian (min..max)", justify="right")
    table.add_column("get_state ms\nmedian (p90)", justify="right")
    table.add_column("Redis / thread\nΣ MEMORY USAGE", justify="right")
    table.add_column("Redis / thread\nused_memory Δ", justify="right")
    for r in results:
        get_state = f"{_ms(r.get_state_ms_median)} ({_ms(r.get_state_ms_p90)})"
        table.add_row(
            r.name,
            r.version,
            r.backend,
            f"{r.rounds} x {r.threads} x {r.steps}",
            _spread(r),
            get_state if r.get_state_ms_median is not None else "—",
            _size(r.redis_key_bytes_per_thread),
            _size(r.redis_used_memory_per_thread),
        )
    return table


def compute_ratios(results: list[Result]) -> dict[str, Any]:
    """Per-superstep time against the floor, and ours against the official Redis saver."""
    ms = {r.name: r.ms_per_step for r in results if r.ms_per_step is not None and not r.error}
    floor = ms.get(FLOOR)
    vs_floor = {name: value / floor for name, value in ms.items()} if floor else {}
    vs_official: dict[str, dict[str, float | None]] = {}
    official = next((r for r in results if r.name == OFFICIAL and not r.error), None)
    for ours in (r for r in results if r.name in (OURS_SHARED, OURS_STACK) and not r.error):
        if official is None or not official.ms_per_step or not ours.ms_per_step:
            continue
        gs_ours, gs_official = ours.get_state_ms_median, official.get_state_ms_median
        vs_official[ours.name] = {
            "superstep_speedup": official.ms_per_step / ours.ms_per_step,
            "get_state_speedup": gs_official / gs_ours if gs_ours and gs_official else None,
        }
    return {"superstep_vs_floor": vs_floor, "ours_vs_official": vs_official}


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def ratio_tables(ratios: dict[str, Any]) -> list[Table]:
    floor = Table(title="Per-superstep time ÷ InMemorySaver's (lower is better)")
    floor.add_column("saver")
    floor.add_column("x floor", justify="right")
    for name, value in ratios["superstep_vs_floor"].items():
        floor.add_row(name, _times(value))
    official = Table(title="langgraph-checkpoint-redis ÷ ours (higher: ours is faster)")
    official.add_column("ours")
    official.add_column("superstep speed-up", justify="right")
    official.add_column("get_state speed-up", justify="right")
    for name, value in ratios["ours_vs_official"].items():
        official.add_row(
            name, _times(value["superstep_speedup"]), _times(value["get_state_speedup"])
        )
    return [floor, official]


def check_targets(results: list[Result], ratios: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's targets for our saver, each with its measured value and verdict."""
    checks: list[dict[str, Any]] = []
    for r in (r for r in results if r.name in (OURS_SHARED, OURS_STACK) and not r.error):
        vs_floor = ratios["superstep_vs_floor"].get(r.name)
        speedup = ratios["ours_vs_official"].get(r.name, {}).get("superstep_speedup")
        rows = [
            (f"superstep ≤ {TARGET_VS_FLOOR}x floor", vs_floor, vs_floor is not None
             and vs_floor <= TARGET_VS_FLOOR),
            (f"≥ {TARGET_VS_OFFICIAL}x faster than official", speedup, speedup is not None
             and speedup >= TARGET_VS_OFFICIAL),
            (f"get_state < {TARGET_GET_STATE_MS} ms", r.get_state_ms_median,
             r.get_state_ms_median is not None and r.get_state_ms_median < TARGET_GET_STATE_MS),
        ]  # fmt: skip
        checks += [{"saver": r.name, "target": t, "value": v, "met": m} for t, v, m in rows]
    return checks


def targets_table(checks: list[dict[str, Any]]) -> Table:
    table = Table(title="Targets for graphrelay's RedisSaver")
    for column in ("saver", "target", "measured", "met"):
        table.add_column(column)
    for check in checks:
        value = check["value"]
        shown = "—" if value is None else f"{value:.3f}"
        verdict = "[green]yes[/]" if check["met"] else "[red]no[/]"
        table.add_row(check["saver"], check["target"], shown, verdict)
    return table


def print_report(results: list[Result], ratios: dict[str, Any], checks: list[Any]) -> None:
    console.print(results_table(results))
    console.print(
        "Redis memory per thread: Σ MEMORY USAGE (SAMPLES 0) over the saver's keys, and INFO "
        "used_memory (only where the saver has the server to itself; it also counts "
        "RediSearch indexes), each as growth over the timed threads ÷ threads run."
    )
    for r in results:
        for note in r.notes:
            console.print(f"[yellow]note[/] {r.name}: {note}")
        if r.error:
            console.print(f"[red]error[/] {r.name}: {r.error}")
    for table in ratio_tables(ratios):
        if table.row_count:
            console.print(table)
    if checks:
        console.print(targets_table(checks))


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=300, help="supersteps per thread (S)")
    parser.add_argument("--threads", type=int, default=5, help="threads per saver (T)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per saver")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds per saver and round: no thread is started that would pass it",
    )
    parser.add_argument("--durability", choices=["sync", "async", "exit"], default="async")
    parser.add_argument("--redis-url", default=SHARED_REDIS_URL, help="plain Redis for ours")
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL, help="admin database")
    parser.add_argument("--no-redis-stack", action="store_true", help="skip the official saver")
    return parser.parse_args(argv)


def print_header(args: argparse.Namespace) -> None:
    packages = ["langgraph", "langgraph-checkpoint", "redis", "psycopg", "redisvl"]
    versions = ", ".join(f"{name} {package_version(name)}" for name in packages)
    console.print(
        f"[bold]graphrelay checkpointer benchmark[/] S={args.steps} supersteps x T={args.threads}"
        f" threads x {args.rounds} interleaved rounds per saver (medians over rounds),"
        f" {MESSAGE_BYTES}-char message per step, durability={args.durability}, "
        f"get_state x {GET_STATE_CALLS}, budget {args.budget:.0f} s per saver-round\n"
        f"Python {sys.version.split()[0]}; {versions}"
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    console.print(f"{os.cpu_count()} CPUs, load average {load} (other work skews the timings)")


def start_redis_stack(stack: contextlib.ExitStack, args: argparse.Namespace) -> str | None:
    if args.no_redis_stack:
        return None
    try:
        return stack.enter_context(redis_stack())
    except Exception as error:
        console.print(f"[yellow]Skipping the Redis Stack savers: {error}[/]")
        return None


def write_json(path: Path, args: argparse.Namespace, report: dict[str, Any]) -> None:
    params = {key: str(value) for key, value in vars(args).items()}
    path.write_text(json.dumps({"params": params, **report}, indent=2) + "\n")
    console.print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print_header(args)
    with contextlib.ExitStack() as stack:
        stack_url = start_redis_stack(stack, args)
        candidates = build_candidates(args, stack_url)
        for candidate in candidates:
            console.print(f"{candidate.name}: {candidate.backend}")
        results = run_all(candidates, args)
    ratios = compute_ratios(results)
    checks = check_targets(results, ratios)
    print_report(results, ratios, checks)
    if args.json:
        report = {"results": [asdict(r) for r in results], "ratios": ratios, "targets": checks}
        write_json(args.json, args, report)


if __name__ == "__main__":
    main()
