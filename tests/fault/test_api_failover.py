"""Two API replicas share one Redis (issue 4, must-show 2): a run started on one is joined and
resumed on the other; when the first is killed mid-run, the second finishes it."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphrelay.processes import free_port
from tests.support import services
from tests.support.stack import Stack, final_answer, production_env

QUESTION = {"messages": [{"role": "user", "content": "hello there"}]}


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Stack]:
    services.check_redis()
    vhost = services.new_vhost()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    second_port = free_port()
    env = production_env(
        tmp_path,
        vhost,
        prefix,
        GRAPHRELAY_RUN_LEASE_SECONDS="2",
        GRAPHRELAY_API2_PORT=str(second_port),
        # Workers report to the second replica, as a load balancer might send them.
        GRAPHRELAY_CALLBACK_URL=f"http://127.0.0.1:{second_port}/internal/tasks/callback",
    )
    stack = Stack(env, tmp_path)
    try:
        stack.start("api", "api2", "io", "cpu")
        yield stack
    finally:
        stack.stop()
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)


def test_run_started_on_one_replica_is_joined_and_resumed_on_the_other(replicas: Stack) -> None:
    first, second = replicas.sdk("api"), replicas.sdk("api2")
    thread_id = first.threads.create()["thread_id"]
    run = first.runs.create(thread_id, "agent", input=QUESTION)

    joined = second.runs.join(thread_id, run["run_id"])

    assert joined["__interrupt__"][0]["value"]["type"] == "background_task_pending"
    replicas.wait_for("the resume", lambda: second.threads.get(thread_id)["status"] == "idle")
    resume, original = second.runs.list(thread_id)
    assert resume["metadata"]["resumed_by"] == "background_tasks"
    assert resume["metadata"]["executed_by"] != original["metadata"]["executed_by"]
    assert final_answer(dict(second.threads.get_state(thread_id))) == "answer: echo: hello"


def test_killed_replica_run_is_finished_by_the_other(replicas: Stack) -> None:
    first, second = replicas.sdk("api"), replicas.sdk("api2")
    thread_id = first.threads.create()["thread_id"]
    question = {"messages": [{"role": "user", "content": "block the run"}]}
    run_id = first.runs.create(thread_id, "agent", input=question)["run_id"]
    replicas.wait_for(
        "the run to start", lambda: second.runs.get(thread_id, run_id)["status"] == "running"
    )

    dead = replicas.processes.pop("api")
    os.killpg(dead.pid, signal.SIGKILL)
    dead.wait()

    finished = replicas.wait_for(
        "the takeover",
        lambda: (r := second.runs.get(thread_id, run_id))["status"] == "success" and r,
        timeout=60,
    )
    assert finished["metadata"]["taken_over_by"] == finished["metadata"]["executed_by"]
    state = dict(second.threads.get_state(thread_id))
    assert final_answer(state) == "unblocked: unblocked"
