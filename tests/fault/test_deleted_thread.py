"""Issue 13, item 4: a deleted thread's call must not be repaired forever, nor starve the
others. An interrupted thread is deleted while its background call runs, and the worker
finishes it; a call left completed by a thread that an older version deleted is in the ledger
too; then a live thread's callback is lost (the API is down when its worker calls back). With
a sweeper batch of one record, the sweeper must settle the dead threads' calls instead of
resuming them every round, and so reach the live thread, which finishes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphrelay.bridge.calls import CallRecord, CallStatus
from tests.support import services
from tests.support.stack import Stack, final_answer, production_env


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    services.check_redis()
    vhost, prefix = services.new_vhost(), f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    env = production_env(
        tmp_path, vhost, prefix,
        GRAPHRELAY_SWEEPER_BATCH="1",
        GRAPHRELAY_SWEEPER_GRACE_SECONDS="1",
        GRAPHRELAY_SWEEPER_PERIOD_SECONDS="0.5",
        GRAPHRELAY_CALLBACK_MAX_ATTEMPTS="1",  # a callback to an API that is down is lost
    )  # fmt: skip
    stack = Stack(env, tmp_path)
    try:
        yield stack
    finally:
        stack.stop()
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)


def _ended(stack: Stack, task_id: str) -> bool:
    """Whether the io worker is done with the call: it ran to its end, or was revoked."""
    log = stack.log("io").read_text(errors="replace")
    task = re.escape(task_id)
    return re.search(rf"\[{task}\] (succeeded|raised)|Terminating {task}", log) is not None


def _suspended(stack: Stack, question: str) -> tuple[str, CallRecord]:
    """A thread suspended on the one background call `question` makes; that call."""
    thread_id = stack.start_thread(question)
    stack.pending(thread_id)
    [call] = stack.records(thread_id)
    return thread_id, call


def test_a_deleted_threads_call_is_settled_and_the_live_thread_finishes(stack: Stack) -> None:
    stack.start("api", "io")
    deleted, deleted_call = _suspended(stack, "slow call")  # its call runs for 3 s
    stack.sdk().threads.delete(deleted)
    stack.wait_for("the deleted thread's call to end", lambda: _ended(stack, deleted_call.task_id))
    ledger = stack.ledger()
    left_over = CallRecord(
        task_id=f"gr-left-over-{uuid.uuid4().hex[:8]}", thread_id="deleted-by-an-older-version",
        tool="echo_later", queue="io", args={"text": "x"},
    )  # fmt: skip
    ledger.intend(left_over)
    ledger.finish(left_over.task_id, CallStatus.COMPLETED, result="echo: x")

    live, live_call = _suspended(stack, "slow call")
    stack.stop("api")
    stack.wait_for("the live thread's call to end", lambda: _ended(stack, live_call.task_id))
    stack.start("api", "sweeper")

    state = stack.wait_done(live, timeout=60)

    assert final_answer(state) == "answer: echo: slow"
    closed = ledger.get(deleted_call.task_id)  # kept closed while a worker could still run it
    assert closed is not None and closed.status == CallStatus.ABANDONED
    assert (
        closed.reason == "its thread was deleted" and closed.result is None
    )  # the late outcome: ignored
    assert ledger.get(left_over.task_id) is None  # settled by the sweeper, then forgotten
    assert ledger.for_thread(deleted) == []
    sweeper_log = stack.log("sweeper").read_text(errors="replace")
    assert f"resuming thread {deleted}" not in sweeper_log
    assert f"resuming thread {left_over.thread_id}" not in sweeper_log
    assert f"thread {left_over.thread_id}: its thread no longer exists" in sweeper_log
    ledger.close()
