"""A thread's lifetime in every store, on real Redis and SQLite, through direct store calls:
each store writes a thread's worth (checkpoints of a run, thread and run records with an
active-run marker, background calls in every state, a run lease, a held lock, kept events),
and then the keyspace (SCAN) or the tables hold nothing of the thread once its TTL passed, or
once it was deleted. The same through the real API: tests/integration/test_thread_lifetime.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
import redis
from langgraph.graph import START, StateGraph

from graphrelay.backends.redis.saver import RedisSaver
from graphrelay.bridge.calls import CallRecord, CallStatus
from graphrelay.config import Settings
from graphrelay.errors import ConfigurationError
from graphrelay.runtime.engine import open_engine
from graphrelay.server import lifetime
from graphrelay.server.engine import Engine
from graphrelay.server.records import RunRecord, ThreadRecord
from tests.support import services
from tests.support.fakes import RecordingDispatcher
from tests.support.services import key_kinds, keyspace

TTL = 1.0


class Steps(TypedDict):
    log: Annotated[list[str], operator.add]


@pytest.fixture
def prefix() -> Iterator[str]:
    services.check_redis()
    name = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    yield name
    services.clear_prefix(name)


@contextlib.asynccontextmanager
async def redis_engine(prefix: str, ttl: float | None) -> AsyncIterator[Engine]:
    settings = Settings(
        profile="production", ledger_url=services.REDIS_URL, checkpointer_url=services.REDIS_URL,
        result_backend=services.REDIS_URL, key_prefix=prefix, thread_ttl_seconds=ttl,
        run_lease_seconds=2 * TTL, graphs={},
    )  # fmt: skip
    async with open_engine(settings, dispatcher=RecordingDispatcher()) as engine:
        yield engine


class ThreadsWorth:
    """What every store holds for one thread: ids, to look for them in the keyspace."""

    def __init__(self) -> None:
        self.thread = ThreadRecord(graph_id="steps")
        self.ended = RunRecord(thread_id=self.thread.thread_id, assistant_id="steps")
        self.active = RunRecord(thread_id=self.thread.thread_id, assistant_id="steps")

    @property
    def open_calls(self) -> list[str]:
        """The calls a worker may still run (no outcome; parked or not): kept, closed, by a
        delete."""
        names = ("dispatched", "intended", "parked")
        return [f"gr-{name}-{self.thread.thread_id}" for name in names]

    @property
    def ids(self) -> list[str]:
        return [self.thread.thread_id, self.ended.run_id, self.active.run_id]

    async def write(self, engine: Engine, *, active: bool) -> None:
        """Through each store: checkpoints of the ended run, both runs' records (the active
        one with its marker and lease), calls in every state, kept events, a held lock."""
        thread_id = self.thread.thread_id
        await engine.store.put_thread(self.thread)
        builder = StateGraph(Steps)
        builder.add_node("step", lambda state: {"log": ["step"]})
        builder.add_edge(START, "step")
        graph = builder.compile(checkpointer=engine.checkpointer)
        config: Any = {"configurable": {"thread_id": thread_id, "run_id": self.ended.run_id}}
        await graph.ainvoke({"log": []}, config)
        await engine.store.put_thread(self.thread)
        assert (
            await engine.store.claim(self.ended, if_busy="queue", if_interrupted="allow")
        ).claimed
        self.ended.status = "success"
        await engine.store.put_run(self.ended, "idle")
        await engine.executor.leases.grant(self.ended.run_id, "a-replica-that-died", 2 * TTL)
        if active:
            await engine.store.put_thread(self.thread)
            assert (
                await engine.store.claim(self.active, if_busy="queue", if_interrupted="allow")
            ).claimed
            await engine.executor.leases.grant(self.active.run_id, "a-replica-that-died", 2 * TTL)
        self.calls(engine)
        engine.executor.events.publish(self.ended.run_id, "values", {"n": 1}, keep=True)
        async with engine.executor.locks.hold(thread_id):
            pass

    def calls(self, engine: Engine) -> None:
        ledger, thread_id = engine.ledger, self.thread.thread_id
        deadline = time.time() + 60
        for name in ("intended", "dispatched", "completed", "failed", "applied", "parked"):
            ledger.intend(CallRecord(task_id=f"gr-{name}-{thread_id}", thread_id=thread_id,
                                     tool="echo", queue="io", deadline=deadline))  # fmt: skip
        ledger.mark_dispatched(f"gr-dispatched-{thread_id}")
        ledger.finish(f"gr-completed-{thread_id}", CallStatus.COMPLETED, result="r")
        ledger.finish(f"gr-failed-{thread_id}", CallStatus.FAILED, error="e")
        ledger.finish(f"gr-applied-{thread_id}", CallStatus.COMPLETED, result="r")
        ledger.mark_applied([f"gr-applied-{thread_id}"])
        ledger.note_failed_repair(f"gr-parked-{thread_id}", CallStatus.INTENDED, "stuck", 1)


async def wait_until_empty(prefix: str, engine: Engine) -> dict[str, Any]:
    """What is left under `prefix` once the sweeper's housekeeping found nothing more to
    drop, or after 30 s."""
    deadline = time.monotonic() + 30
    while True:
        # A sweeper round's housekeeping: shared index entries of expired records, and
        # leases of runs that are gone.
        await asyncio.to_thread(engine.ledger.forget_expired)
        await engine.store.forget_expired()
        await engine.executor.take_over_expired()
        left = keyspace(prefix)
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.2)


async def test_every_store_forgets_a_thread_whose_ttl_passed(prefix: str) -> None:
    worth = ThreadsWorth()
    async with redis_engine(prefix, TTL) as engine:
        await worth.write(engine, active=True)
        await asyncio.sleep(0.1)  # the kept event's write is queued on a sender task
        written = keyspace(prefix)
        assert {"cp", "task", "thread-tasks", "tasks-by-status", "tasks-by-deadline", "thread",
                "thread-status", "run", "active-run", "thread-of", "thread-expiry-of", "run-of",
                "active-run-of", "run-leases", "run-lease-owners",
                "kept-events"} <= key_kinds(written, prefix)  # fmt: skip
        assert any(worth.thread.thread_id in members for members in written.values())

        assert await wait_until_empty(prefix, engine) == {}


async def test_a_deleted_thread_leaves_nothing_but_closed_calls_a_worker_may_still_run(
    prefix: str,
) -> None:
    worth = ThreadsWorth()
    async with redis_engine(prefix, None) as engine:
        await worth.write(engine, active=True)
        assert not await lifetime.delete_thread(engine, worth.thread.thread_id)  # a run is on
        assert keyspace(prefix)
        worth.active.status = "interrupted"
        await engine.store.put_run(worth.active, "idle")
        await asyncio.sleep(0.1)

        assert await lifetime.delete_thread(engine, worth.thread.thread_id)

        left = keyspace(prefix)
        kept = [engine.ledger.get(task_id) for task_id in worth.open_calls]
        revoked = sorted(engine.dispatcher.revoked)  # type: ignore[attr-defined]
    assert sorted(left) == [f"{prefix}:task:{task_id}" for task_id in worth.open_calls]
    assert revoked == worth.open_calls
    client = redis.Redis.from_url(services.REDIS_URL)
    for record in kept:
        assert record is not None and record.status == CallStatus.ABANDONED
        assert record.reason is not None and record.forget_at is not None
        if "parked" not in record.task_id:  # a parked call keeps the reason it was parked for
            assert record.reason == lifetime.DELETED_REASON
        expires_in = client.pttl(f"{prefix}:task:{record.task_id}") / 1000
        assert 0 < expires_in <= record.forget_at - time.time() + 1
    client.close()


def test_the_redis_saver_alone_leaves_no_key_of_an_expired_thread(prefix: str) -> None:
    """The issue's report: a run_id in the config, then its run index, per-run entries, the
    run → threads index and the global thread set outlived the TTL."""
    saver = RedisSaver(services.REDIS_URL, prefix=f"{prefix}:cp", ttl_seconds=TTL)
    builder = StateGraph(Steps)
    builder.add_node("step", lambda state: {"log": ["step"]})
    builder.add_edge(START, "step")
    graph = builder.compile(checkpointer=saver)
    graph.invoke({"log": []}, {"configurable": {"thread_id": "t1", "run_id": "r1"}})
    client = redis.Redis.from_url(services.REDIS_URL)
    lifetimes = {key: client.pttl(key) for key in keyspace(prefix)}
    client.close()
    assert {key for key, ms in lifetimes.items() if not 0 < ms <= TTL * 1000} == set()

    deadline = time.monotonic() + 30
    while keyspace(prefix) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert keyspace(prefix) == {}
    saver.close()


async def test_a_ttl_on_a_store_without_one_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, thread_ttl_seconds=60)
    with pytest.raises(ConfigurationError, match="needs Redis for every store"):
        async with open_engine(settings, dispatcher=RecordingDispatcher()):
            pass


def test_checkpoint_ttl_seconds_is_the_older_name_of_the_thread_ttl() -> None:
    assert Settings(checkpoint_ttl_seconds=60).thread_ttl_seconds == 60
    with pytest.raises(ValueError, match="set only GRAPHRELAY_THREAD_TTL_SECONDS"):
        Settings(checkpoint_ttl_seconds=60, thread_ttl_seconds=30)


async def test_a_deleted_thread_leaves_no_row_in_the_embedded_stores(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, graphs={})
    worth = ThreadsWorth()
    async with open_engine(settings, dispatcher=RecordingDispatcher()) as engine:
        await worth.write(engine, active=False)
        assert _rows(tmp_path, worth)

        assert await lifetime.delete_thread(engine, worth.thread.thread_id)

    assert _rows(tmp_path, worth) == {"ledger tasks": worth.open_calls}  # kept, closed


def _rows(data_dir: Path, worth: ThreadsWorth) -> dict[str, list[str]]:
    """The rows of each embedded store that belong to the thread (or its runs)."""
    thread_id = worth.thread.thread_id
    queries = {
        "ledger tasks": ("ledger.sqlite", "SELECT task_id FROM tasks WHERE thread_id = ?"),
        "run documents": ("runs.sqlite", "SELECT id FROM docs WHERE id = ? OR parent = ?"),
        "run leases": ("runs.sqlite", "SELECT run_id FROM leases WHERE run_id IN (?, ?)"),
        "checkpoints": ("checkpoints.sqlite", "SELECT checkpoint_id FROM checkpoints"
                        " WHERE thread_id = ?"),
        "writes": ("checkpoints.sqlite", "SELECT task_id FROM writes WHERE thread_id = ?"),
    }  # fmt: skip
    params = {"run documents": (thread_id, thread_id), "run leases": (worth.ended.run_id,
              worth.active.run_id)}  # fmt: skip
    found = {}
    for name, (file, query) in queries.items():
        with contextlib.closing(sqlite3.connect(data_dir / file)) as db:
            rows = db.execute(query, params.get(name, (thread_id,))).fetchall()
        if rows:
            found[name] = sorted(str(row[0]) for row in rows)
    return found


async def test_a_read_of_the_thread_and_a_lease_renewal_keep_its_records_alive(
    prefix: str,
) -> None:
    """Touches, seen in the keys' remaining lifetime: reading the thread starts its TTL
    again, and so does renewing the lease of a run that executes (for the run too)."""
    ttl = 60.0
    client = redis.Redis.from_url(services.REDIS_URL)
    thread = ThreadRecord()
    run = RunRecord(thread_id=thread.thread_id, assistant_id="steps")
    thread_keys = [
        f"{prefix}:thread:{thread.thread_id}",
        f"{prefix}:thread-status:{thread.thread_id}",
    ]
    run_keys = [f"{prefix}:{kind}:{run.run_id}" for kind in ("run", "active-run")]
    run_keys += [f"{prefix}:{kind}-of:{thread.thread_id}" for kind in ("run", "active-run")]
    async with redis_engine(prefix, ttl) as engine:
        await engine.store.put_thread(thread)
        assert (await engine.store.claim(run, if_busy="queue", if_interrupted="allow")).claimed
        for key in thread_keys + run_keys:
            client.pexpire(key, 1000)

        await engine.store.get_thread(thread.thread_id)
        assert all(client.pttl(key) > 50_000 for key in thread_keys)
        assert all(client.pttl(key) <= 1000 for key in run_keys)

        await engine.store.keep_alive([run.run_id])
        assert all(client.pttl(key) > 50_000 for key in run_keys)
        expiry = client.zscore(f"{prefix}:thread-expiry-of:all-threads", thread.thread_id)
        assert expiry is not None and expiry > time.time() + 50
    client.close()
