"""Both ledger adapters obey the same transition rules, atomically (real SQLite, real Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from graphrelay.backends import open_ledger
from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.redis.ledger import RedisLedger
from graphrelay.backends.sqlite.ledger import SqliteLedger
from graphrelay.bridge.calls import CallRecord, CallStatus
from graphrelay.bridge.ledger import Ledger
from tests.support import services


@pytest.fixture(params=["sqlite", "redis"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        adapter = Ledger(SqliteLedger(tmp_path / "ledger.sqlite"))
        yield adapter
        adapter.close()
        return
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    adapter = Ledger(RedisLedger(services.REDIS_URL, RedisKeys(prefix)))
    yield adapter
    adapter.close()
    services.clear_prefix(prefix)


def _record(task_id: str = "gr-1", thread_id: str = "t1") -> CallRecord:
    return CallRecord(task_id=task_id, thread_id=thread_id, tool="echo", queue="io")


def test_intend_keeps_the_first_record(ledger: Ledger) -> None:
    first = ledger.intend(_record())
    ledger.mark_dispatched("gr-1")

    again = ledger.intend(_record())

    assert first.status == CallStatus.INTENDED
    assert again.status == CallStatus.DISPATCHED


def test_transitions_follow_the_protocol(ledger: Ledger) -> None:
    ledger.intend(_record())
    assert ledger.finish("gr-1", CallStatus.COMPLETED, result={"n": 1})
    ledger.mark_dispatched("gr-1")  # too late: no effect
    assert ledger.get("gr-1").status == CallStatus.COMPLETED  # type: ignore[union-attr]

    ledger.mark_applied(["gr-1"])
    record = ledger.get("gr-1")

    assert record is not None
    assert record.status == CallStatus.APPLIED
    assert record.result == {"n": 1}
    assert record.finished_at is not None


def test_applied_only_after_an_outcome(ledger: Ledger) -> None:
    ledger.intend(_record())
    ledger.mark_applied(["gr-1"])
    assert ledger.get("gr-1").status == CallStatus.INTENDED  # type: ignore[union-attr]


def test_first_write_wins_under_concurrency(ledger: Ledger) -> None:
    ledger.intend(_record())

    def finish(n: int) -> bool:
        return ledger.finish("gr-1", CallStatus.COMPLETED, result=n)

    with ThreadPoolExecutor(16) as pool:
        wins = list(pool.map(finish, range(32)))

    assert wins.count(True) == 1
    assert ledger.get("gr-1").result == wins.index(True)  # type: ignore[union-attr]


def test_attempts_count_every_execution(ledger: Ledger) -> None:
    ledger.intend(_record())
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: ledger.start_attempt("gr-1"), range(10)))
    assert ledger.get("gr-1").attempts == 10  # type: ignore[union-attr]
    assert ledger.start_attempt("missing") == 0


def test_for_thread_lists_only_that_thread_oldest_first(ledger: Ledger) -> None:
    for n in range(3):
        ledger.intend(_record(f"gr-a{n}", "thread-a"))
    ledger.intend(_record("gr-b", "thread-b"))

    assert [r.task_id for r in ledger.for_thread("thread-a")] == ["gr-a0", "gr-a1", "gr-a2"]
    assert ledger.for_thread("nobody") == []
    assert ledger.get("missing") is None


def test_stale_finds_records_by_status_and_age(ledger: Ledger) -> None:
    for n in range(3):
        ledger.intend(_record(f"gr-{n}", "t"))
    ledger.mark_dispatched("gr-1")
    ledger.finish("gr-2", CallStatus.COMPLETED, result="r")
    now = time.time() + 1

    assert [r.task_id for r in ledger.stale(CallStatus.INTENDED, now, 10)] == ["gr-0"]
    assert [r.task_id for r in ledger.stale(CallStatus.DISPATCHED, now, 10)] == ["gr-1"]
    assert [r.task_id for r in ledger.stale(CallStatus.COMPLETED, now, 10)] == ["gr-2"]
    assert ledger.stale(CallStatus.INTENDED, now - 60, 10) == []  # not old enough

    ledger.mark_applied(["gr-2"])
    assert ledger.stale(CallStatus.COMPLETED, now, 10) == []
    with pytest.raises(ValueError, match="applied"):
        ledger.stale(CallStatus.APPLIED, now, 10)


def test_overdue_lists_open_calls_past_their_deadline(ledger: Ledger) -> None:
    now = time.time()
    for name, deadline in (("late", now - 5), ("later", now - 1), ("on-time", now + 60)):
        ledger.intend(_record(f"gr-{name}").model_copy(update={"deadline": deadline}))
    ledger.intend(_record("gr-done").model_copy(update={"deadline": now - 9}))
    ledger.finish("gr-done", CallStatus.COMPLETED, result="r")

    assert [r.task_id for r in ledger.overdue(now, 10)] == ["gr-late", "gr-later"]
    assert [r.task_id for r in ledger.overdue(now, 1)] == ["gr-late"]


def test_a_worker_attempt_marks_an_intended_call_dispatched(ledger: Ledger) -> None:
    ledger.intend(_record())
    ledger.start_attempt("gr-1")
    assert ledger.get("gr-1").status == CallStatus.DISPATCHED  # type: ignore[union-attr]
    assert ledger.stale(CallStatus.INTENDED, time.time() + 1, 10) == []


def test_open_ledger_refuses_unknown_urls() -> None:
    with pytest.raises(ValueError, match="unsupported ledger URL"):
        open_ledger("mysql://x")


async def test_the_awaited_methods_follow_the_same_rules(ledger: Ledger) -> None:
    first = await ledger.aintend(_record())
    again = await ledger.aintend(_record().model_copy(update={"tool": "other"}))
    assert first.status == again.status == CallStatus.INTENDED
    assert again.tool == "echo"  # the first record stays

    await ledger.amark_dispatched("gr-1")
    assert (await ledger.aget("gr-1")).status == CallStatus.DISPATCHED  # type: ignore[union-attr]
    wins = await asyncio.gather(
        *(ledger.afinish("gr-1", CallStatus.COMPLETED, result=n) for n in range(8))
    )
    assert wins.count(True) == 1
    assert [r.task_id for r in await ledger.afor_thread("t1")] == ["gr-1"]

    await ledger.amark_applied(["gr-1", "missing"])
    record = await ledger.aget("gr-1")
    assert record is not None
    assert (record.status, record.result) == (CallStatus.APPLIED, wins.index(True))
    assert await ledger.aget("missing") is None
    assert ledger.stale(CallStatus.COMPLETED, time.time() + 1, 10) == []  # index followed


async def test_sync_and_awaited_writers_race_and_first_write_wins(ledger: Ledger) -> None:
    ledger.intend(_record())

    def finish_in_threads() -> list[bool]:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda n: ledger.finish("gr-1", CallStatus.FAILED, error=f"e{n}"),
                                 range(8)))  # fmt: skip

    threaded = asyncio.to_thread(finish_in_threads)
    awaited = asyncio.gather(*(ledger.afinish("gr-1", CallStatus.COMPLETED) for _ in range(8)))
    from_threads, from_loop = await asyncio.gather(threaded, awaited)

    assert from_threads.count(True) + list(from_loop).count(True) == 1


def test_a_write_retried_after_its_reply_was_lost_still_counts() -> None:
    """A dropped connection can lose the reply of a compare-and-set that Redis ran; the
    retry finds its own write stored and must report it made, not refused."""
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    store = RedisLedger(services.REDIS_URL, RedisKeys(prefix))
    ledger = Ledger(store)
    real = store.client.execute_command

    def reply_lost_once(*command: object) -> object:
        if command[0] == "EVAL":
            real(*command)  # ran, but its reply never came back
        return real(*command)

    try:
        ledger.intend(_record())
        store.client.execute_command = reply_lost_once  # type: ignore[method-assign]

        assert ledger.finish("gr-1", CallStatus.COMPLETED, result="r")
        assert not ledger.finish("gr-1", CallStatus.FAILED, error="late")
        stored = ledger.get("gr-1")
        assert stored is not None and stored.status == CallStatus.COMPLETED
    finally:
        ledger.close()
        services.clear_prefix(prefix)


async def test_closing_a_thread_settles_its_calls_and_forgets_its_records(ledger: Ledger) -> None:
    deadline = time.time() + 60
    ledger.intend(_record("gr-running", "gone").model_copy(update={"deadline": deadline}))
    ledger.mark_dispatched("gr-running")
    ledger.intend(_record("gr-done", "gone"))
    ledger.finish("gr-done", CallStatus.COMPLETED, result="r")
    ledger.intend(_record("gr-applied", "gone"))
    ledger.finish("gr-applied", CallStatus.COMPLETED, result="r")
    ledger.mark_applied(["gr-applied"])
    ledger.intend(_record("gr-other", "other"))

    closed = await ledger.aclose_thread("gone", "its thread was deleted")

    assert sorted(r.task_id for r in closed) == ["gr-done", "gr-running"]
    assert ledger.for_thread("gone") == []
    assert ledger.get("gr-done") is None and ledger.get("gr-applied") is None
    running = ledger.get("gr-running")  # kept, closed, for the worker that may still run it
    assert running is not None and running.status == CallStatus.ABANDONED
    assert running.reason == "its thread was deleted"
    assert running.forget_at is not None and running.forget_at >= deadline
    later = time.time() + 3600
    assert [r.task_id for r in ledger.stale(CallStatus.INTENDED, later, 10)] == ["gr-other"]
    for status in (CallStatus.DISPATCHED, CallStatus.COMPLETED, CallStatus.FAILED):
        assert ledger.stale(status, later, 10) == []
    assert ledger.overdue(later, 10) == [] and ledger.abandoned() == []
    # A late worker neither runs nor reopens it.
    assert ledger.start_attempt("gr-running") == 0
    assert not ledger.finish("gr-running", CallStatus.COMPLETED, result="late")
    assert ledger.get("gr-running").status == CallStatus.ABANDONED  # type: ignore[union-attr]
    assert [r.task_id for r in ledger.for_thread("other")] == ["gr-other"]

    assert ledger.forget_expired(running.forget_at + 1) in (0, 1)  # SQLite forgets it now
    if isinstance(ledger.store, SqliteLedger):
        assert ledger.get("gr-running") is None
