"""The sweeper fails a call past its deadline with an error the model reads, on real
processes; and quorum queues, when set, are what RabbitMQ declares and they carry calls."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphrelay.bridge.calls import CallStatus
from tests.support import services
from tests.support.stack import Stack, final_answer, production_env, tool_messages


@pytest.fixture
def fresh_vhost(tmp_path: Path) -> Iterator[tuple[str, str]]:
    services.check_redis()
    vhost, prefix = services.new_vhost(), f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    try:
        yield vhost, prefix
    finally:
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)


def test_a_call_past_its_deadline_is_failed_and_the_agent_told(
    tmp_path: Path, fresh_vhost: tuple[str, str]
) -> None:
    env = production_env(
        tmp_path, *fresh_vhost,
        GRAPHRELAY_SWEEPER_GRACE_SECONDS="1", GRAPHRELAY_SWEEPER_PERIOD_SECONDS="1",
    )  # fmt: skip
    stack = Stack(env, tmp_path)
    try:
        stack.start("api", "sweeper")  # no worker: the call can only time out
        thread_id = stack.start_thread("too slow")

        state = stack.wait_done(thread_id, timeout=90)

        [message] = tool_messages(state)
        assert "never_picked_up timed out" in message["content"]
        assert final_answer(state).startswith("gave up: never_picked_up timed out")
        [record] = stack.records(thread_id)
        assert record.status == CallStatus.APPLIED and record.attempts == 0
    finally:
        stack.stop()


def test_quorum_queues_are_declared_and_carry_calls(
    tmp_path: Path, fresh_vhost: tuple[str, str]
) -> None:
    vhost, prefix = fresh_vhost
    env = production_env(tmp_path, vhost, prefix, GRAPHRELAY_QUORUM_QUEUES="true")
    stack = Stack(env, tmp_path)
    try:
        stack.start("api", "io")
        thread_id = stack.start_thread("hello there")
        assert final_answer(stack.wait_done(thread_id)) == "answer: echo: hello"
        listed = subprocess.run(
            ["rabbitmqctl", "list_queues", "-p", vhost, "name", "type", "--quiet"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        types = dict(line.split() for line in listed.splitlines() if line.strip())
        assert types["io"] == "quorum" and types["cpu"] == "quorum"
        assert types["dead_letter"] == "classic"
    finally:
        stack.stop()
