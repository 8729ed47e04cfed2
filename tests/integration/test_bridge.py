"""The bridge end to end on real processes, in both profiles."""

from __future__ import annotations

from graphrelay.bridge.records import TaskStatus
from tests.support.stack import Stack, final_answer


def test_one_background_call_end_to_end(stack: Stack) -> None:
    thread_id = stack.start_thread("hello there")
    pending = stack.pending(thread_id)
    assert pending[0]["type"] == "background_task_pending"
    assert pending[0]["tool"] == "echo_later"

    state = stack.wait_done(thread_id)

    assert final_answer(state) == "answer: echo: hello"
    [record] = stack.records(thread_id)
    assert record.status == TaskStatus.APPLIED
    assert record.attempts == 1
