"""The sweeper's repair rules, on a real SQLite ledger with a recording dispatcher."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from graphrelay.backends.sqlite.ledger import SqliteLedger
from graphrelay.bridge.calls import CallRecord, CallStatus
from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.sweeper import Sweeper, SweepPolicy
from tests.support.fakes import RecordingDispatcher

GRACE = 30.0


class Harness:
    """A sweeper whose resumes and run take-overs are recorded instead of run."""

    def __init__(self, path: Path) -> None:
        self.ledger = Ledger(SqliteLedger(path))
        self.dispatcher = RecordingDispatcher()
        self.resumed: list[str] = []
        self.runs_to_take: list[str] = []
        self.sweeper = Sweeper(
            self.ledger, self.dispatcher, "http://api/callback",
            self._resume, self._take_over, SweepPolicy(grace_seconds=GRACE, batch=100),
        )  # fmt: skip

    async def _resume(self, thread_id: str) -> None:
        self.resumed.append(thread_id)

    async def _take_over(self) -> list[str]:
        taken, self.runs_to_take = self.runs_to_take, []
        return taken

    def add(self, task_id: str, thread_id: str = "t1", deadline: float | None = None) -> None:
        self.ledger.intend(
            CallRecord(
                task_id=task_id, thread_id=thread_id, tool="echo", queue="io", deadline=deadline
            )
        )


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path / "ledger.sqlite")


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
