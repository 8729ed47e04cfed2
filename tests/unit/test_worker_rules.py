"""The worker's side of the bridge in process: store-then-callback, duplicates, poison and
progress, with the worker's services passed in (a real SQLite ledger, a recording notifier)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from graphrelay import PoisonCallError, background_tool, report_progress
from graphrelay.backends.sqlite.ledger import SqliteLedger
from graphrelay.bridge.calls import CallRecord, CallStatus
from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.messages import ProgressMessage
from graphrelay.bridge.worker import POISON_PREFIX, Delivery, WorkerServices, execute_delivery

CALLBACK = "http://api.invalid/internal/tasks/callback"
runs: list[str] = []
meanwhile: list[Callable[[], object]] = []  # what happens elsewhere while a body runs


@background_tool(queue="io", idempotent=True, timeout=30, name="worker_rules_echo")
def echo(text: str) -> str:
    """Echo `text`, reporting progress halfway."""
    runs.append(text)
    report_progress(0.5, f"echoing {text}")
    for event in meanwhile:
        event()
    return f"echo: {text}"


class RecordingNotifier:
    """A Notifier that records what the worker told the API, and what the ledger held then."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.notified: list[CallRecord] = []
        self.stored_when_notified: list[CallRecord | None] = []
        self.progress_reports: list[ProgressMessage] = []

    def notify(self, record: CallRecord, callback_url: str) -> None:
        self.notified.append(record)
        self.stored_when_notified.append(self.ledger.get(record.task_id))

    def progress(self, report: ProgressMessage, callback_url: str) -> None:
        self.progress_reports.append(report)


@pytest.fixture
def worker(tmp_path: Path) -> WorkerServices:
    runs.clear()
    meanwhile.clear()
    ledger = Ledger(SqliteLedger(tmp_path / "ledger.sqlite"))
    return WorkerServices(ledger=ledger, notifier=RecordingNotifier(ledger), max_deliveries=2)


def _notifier(worker: WorkerServices) -> RecordingNotifier:
    assert isinstance(worker.notifier, RecordingNotifier)
    return worker.notifier


def _dispatched(worker: WorkerServices, task_id: str = "gr-1") -> None:
    worker.ledger.intend(CallRecord(task_id=task_id, thread_id="t1", tool=echo.name, queue="io"))
    worker.ledger.mark_dispatched(task_id)


def test_the_outcome_is_stored_before_the_api_is_called_back(worker: WorkerServices) -> None:
    _dispatched(worker)

    execute_delivery(echo, Delivery("gr-1", "t1"), {"text": "hi"}, CALLBACK, worker)

    [told] = _notifier(worker).notified
    [stored] = _notifier(worker).stored_when_notified
    assert told.result == "echo: hi" and told.status == CallStatus.COMPLETED
    assert stored is not None and stored.status == CallStatus.COMPLETED
    assert stored.result == "echo: hi" and stored.attempts == 1


def test_a_duplicate_message_runs_nothing_and_tells_nobody(worker: WorkerServices) -> None:
    _dispatched(worker)
    worker.ledger.start_attempt("gr-1")  # another delivery started it

    execute_delivery(echo, Delivery("gr-1", "t1"), {"text": "hi"}, CALLBACK, worker)

    assert runs == []
    assert _notifier(worker).notified == []


def test_a_redelivered_message_runs_again(worker: WorkerServices) -> None:
    _dispatched(worker)
    worker.ledger.start_attempt("gr-1")  # its worker died mid-task

    execute_delivery(echo, Delivery("gr-1", "t1", redelivered=True), {"text": "hi"}, CALLBACK,
                     worker)  # fmt: skip

    assert runs == ["hi"]
    stored = worker.ledger.get("gr-1")
    assert stored is not None and stored.attempts == 2 and stored.result == "echo: hi"


def test_a_finished_call_is_only_told_again(worker: WorkerServices) -> None:
    _dispatched(worker)
    worker.ledger.finish("gr-1", CallStatus.COMPLETED, result="earlier")

    execute_delivery(echo, Delivery("gr-1", "t1"), {"text": "hi"}, CALLBACK, worker)

    assert runs == []
    [told] = _notifier(worker).notified
    assert told.result == "earlier"


def test_a_poison_call_fails_is_told_and_raises_for_dead_letters(worker: WorkerServices) -> None:
    _dispatched(worker)
    worker.ledger.start_attempt("gr-1")
    worker.ledger.start_attempt("gr-1")  # its worker died max_deliveries times

    with pytest.raises(PoisonCallError, match=POISON_PREFIX):
        execute_delivery(echo, Delivery("gr-1", "t1", redelivered=True), {"text": "hi"},
                         CALLBACK, worker)  # fmt: skip

    assert runs == []
    [told] = _notifier(worker).notified
    assert told.status == CallStatus.FAILED and told.error is not None
    assert told.error.startswith(POISON_PREFIX)


def test_a_message_for_an_unknown_call_is_recorded_then_run(worker: WorkerServices) -> None:
    execute_delivery(echo, Delivery("gr-9", "t9"), {"text": "new"}, CALLBACK, worker)

    stored = worker.ledger.get("gr-9")
    assert stored is not None and stored.thread_id == "t9" and stored.result == "echo: new"


def test_progress_goes_to_the_running_calls_notifier(worker: WorkerServices) -> None:
    _dispatched(worker)

    execute_delivery(echo, Delivery("gr-1", "t1"), {"text": "hi"}, CALLBACK, worker)

    [report] = _notifier(worker).progress_reports
    assert (report.task_id, report.thread_id, report.fraction) == ("gr-1", "t1", 0.5)
    assert report.message == "echoing hi"


def test_fire_and_forget_calls_report_no_progress_and_call_nobody(worker: WorkerServices) -> None:
    _dispatched(worker)

    execute_delivery(echo, Delivery("gr-1", "t1"), {"text": "hi"}, None, worker)

    assert runs == ["hi"]
    assert _notifier(worker).progress_reports == []
    assert _notifier(worker).notified == []


def test_report_progress_outside_a_call_does_nothing() -> None:
    report_progress(0.3, "nobody listens")


def _thread_deleted(worker: WorkerServices) -> None:
    asyncio.run(worker.ledger.aclose_thread("t1", "its thread was deleted"))


@pytest.mark.parametrize("redelivered", [False, True])
def test_a_closed_call_runs_nothing_and_tells_nobody(
    worker: WorkerServices, redelivered: bool
) -> None:
    _dispatched(worker)
    _thread_deleted(worker)

    execute_delivery(echo, Delivery("gr-1", "t1", redelivered), {"text": "hi"}, CALLBACK, worker)

    assert runs == [] and _notifier(worker).notified == []
    stored = worker.ledger.get("gr-1")
    assert stored is not None and stored.status == CallStatus.ABANDONED and stored.attempts == 0


def test_a_call_closed_while_it_runs_is_not_reopened_and_tells_nobody(
    worker: WorkerServices,
) -> None:
    _dispatched(worker)
    meanwhile.append(lambda: _thread_deleted(worker))

    execute_delivery(echo, Delivery("gr-1", "t1"), {"text": "hi"}, CALLBACK, worker)

    assert runs == ["hi"] and _notifier(worker).notified == []
    stored = worker.ledger.get("gr-1")
    assert stored is not None and stored.status == CallStatus.ABANDONED
    assert stored.result is None  # first write wins: the close came first


def test_a_call_whose_record_is_gone_when_it_ends_tells_nobody(worker: WorkerServices) -> None:
    _dispatched(worker)
    meanwhile.append(lambda: worker.ledger.store.forget_thread("t1", ()))  # expired, say

    execute_delivery(echo, Delivery("gr-1", "t1"), {"text": "hi"}, CALLBACK, worker)

    assert runs == ["hi"] and _notifier(worker).notified == []
    assert worker.ledger.get("gr-1") is None  # nothing wrote it back
