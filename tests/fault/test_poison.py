"""Issue 5, must-show 3: a task that kills its worker every time is poison. After
`max_deliveries` deliveries it lands in the dead-letter queue, and the agent gets a tool error
that says what happened, instead of the queue redelivering it forever."""

from __future__ import annotations

import json

from kombu import Connection

from graphrelay.bridge.records import TaskStatus
from graphrelay.execution.celery_app import DEAD_LETTER_QUEUE
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
    assert record.status == TaskStatus.APPLIED
    assert record.attempts == 4  # three deliveries killed their worker; the fourth gave up
    [message] = tool_messages(state)
    assert "poison task: kill_worker was delivered 4 times" in message["content"]
    assert "dead-letter queue" in final_answer(state)
    assert stack.wait_for(
        "the message in the dead-letter queue",
        lambda: record.task_id in _dead_letters(stack.settings.broker_url),
    )
    assert json.dumps(record.args) == '{"reason": "poison"}'
