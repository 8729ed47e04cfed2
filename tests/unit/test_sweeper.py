"""The sweeper's repair rules, on a real ledger (SQLite and Redis) with a recording
dispatcher: repairs, calls of threads that are gone, and records no repair moves (counted,
taken in turn with the others, then parked)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.redis.ledger import RedisLedger
from graphrelay.backends.sqlite.ledger import SqliteLedger
from graphrelay.bridge.calls import CallRecord, CallStatus
from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.ports import LedgerStore
from graphrelay.bridge.sweeper import GONE_REASON, Sweeper, SweepPolicy
from tests.support import services
from tests.support.fakes import RecordingDispatcher

GRACE = 30.0
MAX_REPAIRS = 3


class Harness:
    """A sweeper whose resumes and run take-overs are recorded instead of run. A resume
    applies the outcomes of the threads in `applying`; threads in `gone` do not exist."""

    def __init__(self, store: LedgerStore, batch: int = 100) -> None:
        self.ledger = Ledger(store)
        self.dispatcher = RecordingDispatcher()
        self.resumed: list[str] = []
        self.applying: set[str] = set()
        self.gone: set[str] = set()
        self.runs_to_take: list[str] = []
        self.sweeper = Sweeper(
            self.ledger, self.dispatcher, "http://api/callback",
            self._resume, self._take_over,
            SweepPolicy(grace_seconds=GRACE, batch=batch, max_repairs=MAX_REPAIRS),
            thread_exists=self._exists,
        )  # fmt: skip

    async def _resume(self, thread_id: str) -> None:
        self.resumed.append(thread_id)
        if thread_id in self.applying:
            self.ledger.mark_applied(r.task_id for r in self.ledger.for_thread(thread_id))

    async def _exists(self, thread_id: str) -> bool:
        return thread_id not in self.gone

    async def _take_over(self) -> list[str]:
        taken, self.runs_to_take = self.runs_to_take, []
        return taken

    def add(self, task_id: str, thread_id: str = "t1", deadline: float | None = None) -> None:
        self.ledger.intend(
            CallRecord(
                task_id=task_id, thread_id=thread_id, tool="echo", queue="io", deadline=deadline
            )
        )

    def completed(self, task_id: str, thread_id: str) -> None:
        """A call whose outcome is stored and whose callback was lost."""
        self.add(task_id, thread_id)
        self.ledger.finish(task_id, CallStatus.COMPLETED, result="done")

    def status(self, task_id: str) -> CallStatus | None:
        record = self.ledger.get(task_id)
        return record.status if record else None

    async def rounds(self, count: int) -> list[int]:
        """Sweep `count` rounds as if every record had stalled; parked calls a round."""
        return [
            (await self.sweeper.sweep_once(now=time.time() + GRACE + 1))["parked"]
            for _ in range(count)
        ]


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    if request.param == "sqlite":
        yield SqliteLedger(tmp_path / "ledger.sqlite")
        return
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    yield RedisLedger(services.REDIS_URL, RedisKeys(prefix))
    services.clear_prefix(prefix)


@pytest.fixture
def harness(store: LedgerStore) -> Harness:
    return Harness(store)


def _parked_total() -> float:
    return REGISTRY.get_sample_value("graphrelay_sweeper_repairs_total", {"kind": "parked"}) or 0


async def test_a_fresh_ledger_needs_no_repair(harness: Harness) -> None:
    harness.add("gr-new")  # just intended: the API is about to publish it

    done = await harness.sweeper.sweep_once()

    assert done.total() == 0
    assert harness.dispatcher.dispatched == []


async def test_an_unpublished_call_is_published_once_it_stalls(harness: Harness) -> None:
    harness.add("gr-stuck")

    done = await harness.sweeper.sweep_once(now=time.time() + GRACE + 1)

    assert done["redispatched"] == 1
    assert [r.task_id for r in harness.dispatcher.dispatched] == ["gr-stuck"]
    assert harness.ledger.get("gr-stuck").status == CallStatus.DISPATCHED  # type: ignore[union-attr]
    again = await harness.sweeper.sweep_once(now=time.time() + GRACE + 1)
    assert again["redispatched"] == 0


async def test_an_unapplied_outcome_resumes_its_thread(harness: Harness) -> None:
    harness.add("gr-a", "thread-a")
    harness.add("gr-b", "thread-a")
    harness.add("gr-c", "thread-c")
    harness.ledger.finish("gr-a", CallStatus.COMPLETED, result="ok")
    harness.ledger.finish("gr-b", CallStatus.FAILED, error="boom")
    harness.ledger.finish("gr-c", CallStatus.COMPLETED, result="ok")
    harness.ledger.mark_applied(["gr-c"])

    done = await harness.sweeper.sweep_once(now=time.time() + GRACE + 1)

    assert done["resumed"] == 1
    assert harness.resumed == ["thread-a"]


async def test_a_call_past_its_deadline_is_revoked_failed_and_resumed(harness: Harness) -> None:
    harness.add("gr-slow", "thread-s", deadline=time.time() - GRACE - 5)
    harness.ledger.mark_dispatched("gr-slow")

    done = await harness.sweeper.sweep_once()

    record = harness.ledger.get("gr-slow")
    assert record is not None and record.status == CallStatus.FAILED
    assert record.error is not None and "timed out" in record.error
    assert done["timed_out"] == 1
    assert harness.dispatcher.revoked == ["gr-slow"]
    assert harness.resumed == ["thread-s"]


async def test_a_late_worker_outcome_beats_the_timeout(harness: Harness) -> None:
    harness.add("gr-late", deadline=time.time() - GRACE - 5)
    harness.ledger.finish("gr-late", CallStatus.COMPLETED, result="made it")

    done = await harness.sweeper.sweep_once()

    assert done["timed_out"] == 0
    assert harness.ledger.get("gr-late").result == "made it"  # type: ignore[union-attr]


async def test_expired_runs_are_taken_over_and_counted(harness: Harness) -> None:
    harness.runs_to_take = ["run-1", "run-2"]

    done = await harness.sweeper.sweep_once()

    assert done["runs_taken_over"] == 2


async def test_calls_of_a_thread_that_no_longer_exists_are_settled_not_repaired(
    harness: Harness,
) -> None:
    harness.add("gr-unpublished", "deleted")
    harness.add("gr-running", "deleted", deadline=time.time() - GRACE - 5)
    harness.ledger.mark_dispatched("gr-running")
    harness.completed("gr-done", "deleted")
    harness.completed("gr-live", "live")
    harness.gone.add("deleted")

    done = await harness.sweeper.sweep_once(now=time.time() + GRACE + 1)

    assert done["settled"] == 3
    assert harness.resumed == ["live"]  # nothing is published, timed out or resumed for it
    assert harness.dispatcher.dispatched == []
    assert harness.dispatcher.revoked == ["gr-unpublished", "gr-running"]
    assert harness.status("gr-done") is None  # forgotten: no worker can run it again
    for task_id in ("gr-unpublished", "gr-running"):  # kept closed, for late workers
        record = harness.ledger.get(task_id)
        assert record is not None and record.status == CallStatus.ABANDONED
        assert record.reason == GONE_REASON and record.forget_at is not None
    assert harness.ledger.for_thread("deleted") == []
    assert harness.ledger.abandoned() == []  # not parked: settled
    again = await harness.sweeper.sweep_once(now=time.time() + GRACE + 1)
    assert again["settled"] == 0 and again["timed_out"] == 0


async def test_a_record_no_repair_moves_takes_its_turn_behind_the_others(
    store: LedgerStore,
) -> None:
    """Batch 1: the stuck record is older, so it comes first; once tried it goes behind the
    live thread's record, which the next round repairs."""
    harness = Harness(store, batch=1)
    harness.completed("gr-stuck", "stuck")
    harness.completed("gr-live", "live")
    harness.applying.add("live")

    await harness.rounds(2)

    assert harness.resumed == ["stuck", "live"]
    assert harness.status("gr-live") == CallStatus.APPLIED
    stuck = harness.ledger.get("gr-stuck")
    assert stuck is not None and (stuck.status, stuck.repairs) == (CallStatus.COMPLETED, 1)


async def test_a_repair_that_keeps_failing_is_parked_with_its_reason_and_counted(
    harness: Harness,
) -> None:
    harness.completed("gr-stuck", "stuck")
    before = _parked_total()

    parked = await harness.rounds(MAX_REPAIRS + 2)

    assert parked == [0, 0, 1, 0, 0]
    assert harness.resumed == ["stuck"] * MAX_REPAIRS  # not retried once parked
    [record] = harness.ledger.abandoned()
    assert record.task_id == "gr-stuck" and record.status == CallStatus.ABANDONED
    assert record.reason == (
        f"parked after {MAX_REPAIRS} failed repairs: "
        "resuming thread stuck did not apply the outcome"
    )
    assert record.result == "done"  # the outcome stays in the record
    assert _parked_total() == before + 1
    assert harness.ledger.stale(CallStatus.COMPLETED, time.time() + GRACE, 10) == []


class FailingDispatcher(RecordingDispatcher):
    """Publishing `gr-bad` always fails; revoking always fails."""

    def dispatch(self, record: CallRecord, callback_url: str | None) -> None:
        if record.task_id == "gr-bad":
            raise ConnectionError("the broker refused it")
        super().dispatch(record, callback_url)

    def revoke(self, task_id: str) -> None:
        raise ConnectionError("no broker")


async def test_a_repair_that_raises_is_counted_and_the_round_goes_on(harness: Harness) -> None:
    harness.sweeper.dispatcher = FailingDispatcher()
    harness.add("gr-bad", "t1")
    harness.add("gr-good", "t2")
    harness.add("gr-late", "t3", deadline=time.time() - GRACE - 5)
    harness.applying.add("t3")

    parked = await harness.rounds(MAX_REPAIRS)

    assert parked == [0, 0, 1]
    assert harness.status("gr-good") == CallStatus.DISPATCHED
    late = harness.ledger.get("gr-late")  # the timeout stands, revoked or not
    assert late is not None and late.status == CallStatus.APPLIED
    assert late.error is not None and "timed out" in late.error
    [record] = harness.ledger.abandoned()
    assert record.task_id == "gr-bad"
    assert record.reason is not None
    assert record.reason.endswith("publishing failed: ConnectionError: the broker refused it")
