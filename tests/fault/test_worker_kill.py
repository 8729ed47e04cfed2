"""Must-show 8: a cpu worker killed with SIGKILL mid-task. The idempotent task is acked late,
so RabbitMQ redelivers it to the next worker and the run completes with one applied result."""

from __future__ import annotations

import os
import signal

from graphrelay.bridge.calls import CallStatus
from tests.support.stack import Stack, final_answer, tool_messages


def test_sigkilled_cpu_worker_task_is_redelivered_and_applied_once(
    production_stack: Stack,
) -> None:
    stack = production_stack
    thread_id = stack.start_thread("crunch some numbers")
    [pending] = stack.pending(thread_id)
    ledger = stack.ledger()
    stack.wait_for("the cpu worker to start the task",
                   lambda: (r := ledger.get(pending["task_id"])) and r.attempts == 1)  # fmt: skip

    worker = stack.processes.pop("cpu")
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool children, no goodbye
    worker.wait()
    record = ledger.get(pending["task_id"])
    assert record is not None and record.status == CallStatus.DISPATCHED
    stack.start("cpu")

    state = stack.wait_done(thread_id, timeout=90)

    assert final_answer(state) == "done: crunched for 4.0 s"
    assert len(tool_messages(state)) == 1
    record = ledger.get(pending["task_id"])
    assert record is not None
    assert record.attempts == 2
    assert record.status == CallStatus.APPLIED
    ledger.close()
