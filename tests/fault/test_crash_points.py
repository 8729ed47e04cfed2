"""Issue 5, must-show 1: the API (or a worker) SIGKILLs itself at each crash point of the bridge
protocol, is started again, and the sweeper runs beside it. Every run completes, both
background calls of the thread are applied exactly once, and none ran twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphrelay.bridge.calls import CallStatus
from graphrelay.testing.crash import CRASH_ENV, CRASH_POINTS
from tests.support import services
from tests.support.stack import Stack, final_answer, production_env, tool_messages

API_POINTS = [name for name in CRASH_POINTS if not name.startswith("worker_")]
WORKER_POINTS = [name for name in CRASH_POINTS if name.startswith("worker_")]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    services.check_redis()
    vhost = services.new_vhost()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    env = production_env(
        tmp_path, vhost, prefix,
        GRAPHRELAY_RUN_LEASE_SECONDS="3",
        GRAPHRELAY_SWEEPER_GRACE_SECONDS="2",
        GRAPHRELAY_SWEEPER_PERIOD_SECONDS="1",
    )  # fmt: skip
    stack = Stack(env, tmp_path)
    try:
        yield stack
    finally:
        stack.stop()
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)


@pytest.mark.parametrize("point", API_POINTS + WORKER_POINTS)
def test_a_crash_at_each_point_loses_nothing_and_applies_nothing_twice(
    stack: Stack, point: str
) -> None:
    victim = "io" if point in WORKER_POINTS else "api"
    survivor = "api" if victim == "io" else "io"
    stack.start(survivor)
    stack.start(victim, **{CRASH_ENV: point})

    thread_id = stack.start_thread("two calls")
    crashed = stack.processes.pop(victim)
    assert crashed.wait(timeout=90) == -9, f"{victim} did not crash at {point}"
    stack.start(victim)
    stack.start("sweeper")

    state = stack.wait_done(thread_id, timeout=120)

    assert final_answer(state) == "both done: echo: first\necho: second"
    calls = [message["tool_call_id"] for message in tool_messages(state)]
    assert len(calls) == len(set(calls)) == 2, "a result was applied twice, or one was lost"
    records = stack.wait_for(
        "every outcome to be marked applied",
        lambda: (rs := stack.records(thread_id)) and
        all(r.status == CallStatus.APPLIED for r in rs) and rs,
    )  # fmt: skip
    first, second = sorted(records, key=lambda r: r.args["text"])
    assert first.attempts == 1, "an outcome stored before the crash was computed again"
    # The worker crash also kills the second call mid-task, so RabbitMQ redelivers it.
    assert second.attempts == (2 if victim == "io" else 1)
    client = stack.sdk()
    stack.wait_for(
        "every run to end",
        lambda: all(r["status"] not in ("pending", "running") for r in client.runs.list(thread_id)),
    )
