"""Issue 5, must-show 3: a task that kills its worker every time is poison. After
`max_deliveries` deliveries it lands in the dead-letter queue, and the agent gets a tool error
that says what happened, instead of the queue redelivering it forever. Also: the sweeper's
Celery beat task repairs a stalled call on a real worker."""

from __future__ import annotations

import json
import time
import uuid

from kombu import Connection

from graphrelay.backends.celery.app import SWEEP_TASK, create_celery_app
from graphrelay.backends.celery.queues import DEAD_LETTER_QUEUE
from graphrelay.bridge.calls import CallRecord, CallStatus
from tests.support.stack import Stack, final_answer, tool_messages


def _dead_letters(broker_url: str) -> list[str]:
    """Task ids of the messages waiting in the dead-letter queue (taken off it)."""
    task_ids = []
    with Connection(broker_url) as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(DEAD_LETTER_QUEUE, no_ack=True)) is not None:
            task_ids.append(message.headers["id"])
    return task_ids


def test_a_poison_task_is_dead_lettered_and_the_agent_told(production_stack: Stack) -> None:
    stack = production_stack

    thread_id = stack.start_thread("poison")
    state = stack.wait_done(thread_id, timeout=120)

    [record] = stack.records(thread_id)
    assert record.status == CallStatus.APPLIED
    assert record.attempts == 4  # three deliveries killed their worker; the fourth gave up
    [message] = tool_messages(state)
    assert "poison task: kill_worker was delivered 4 times" in message["content"]
    assert "dead-letter queue" in final_answer(state)
    assert stack.wait_for(
        "the message in the dead-letter queue",
        lambda: record.task_id in _dead_letters(stack.settings.broker_url),
    )
    assert json.dumps(record.args) == '{"reason": "poison"}'


def test_the_sweeper_as_a_celery_task_publishes_a_stalled_call(production_stack: Stack) -> None:
    """The beat job's task, run by the cpu worker, repairs like the sweeper process."""
    stack = production_stack
    ledger = stack.ledger()
    long_ago = time.time() - 3600
    thread_id = stack.sdk().threads.create()["thread_id"]  # the sweeper repairs no dead thread
    stalled = CallRecord(
        task_id=f"gr-stalled-{uuid.uuid4().hex[:8]}", thread_id=thread_id,
        tool="echo_later", queue="io", args={"text": "late"},
        created_at=long_ago, updated_at=long_ago,
    )  # fmt: skip
    ledger.intend(stalled)

    create_celery_app(stack.settings).send_task(SWEEP_TASK, queue="cpu")

    record = stack.wait_for(
        "the stalled call to run",
        lambda: (r := ledger.get(stalled.task_id)) is not None and r.finished and r,
    )
    assert record.result == "echo: late" and record.attempts == 1
    ledger.close()
