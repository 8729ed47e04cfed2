"""Two API replicas share one Redis (issue 4, must-show 2): a run started on one is joined,
streamed and resumed on the other; when a replica is killed mid-run, or mid-resume, the other
finishes its run."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from graphrelay.bridge.calls import CallStatus
from graphrelay.testing.processes import free_port
from tests.support import services
from tests.support.balancer import balancer
from tests.support.stack import Stack, final_answer, production_env, tool_messages

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


async def test_a_run_on_one_replica_streams_to_clients_of_the_other(replicas: Stack) -> None:
    first = get_client(url=replicas.url("api"), api_key=None)
    second = get_client(url=replicas.url("api2"), api_key=None)
    thread_id = (await first.threads.create())["thread_id"]
    question = {"messages": [{"role": "user", "content": "block the run"}]}
    on_thread: list[Any] = []
    joining: list[asyncio.Task[list[Any]]] = []

    async def collect(run_id: str) -> list[Any]:
        return [part async for part in second.runs.join_stream(thread_id, run_id)]

    async def watch_thread() -> None:
        run_id = ""
        async for part in await second.threads.join_stream(thread_id):
            on_thread.append(part)
            if part.event == "metadata":  # subscribed on the second: start on the first
                run = await first.runs.create(
                    thread_id, "agent", input=question, stream_mode=["values", "updates"]
                )
                run_id = run["run_id"]
            elif part.event == "updates" and "model" in part.data and not joining:
                # The model called `block`: the run is busy for 3 s; join it meanwhile.
                joining.append(asyncio.create_task(collect(run_id)))
            elif part.event == "values" and _said(part.data, "unblocked: unblocked"):
                return

    await asyncio.wait_for(watch_thread(), timeout=60)
    joined = await asyncio.wait_for(joining[0], timeout=60)

    assert {"values", "updates"} <= {part.event for part in on_thread}
    assert joined[0].event == "metadata" and joined[-1].event == "end"
    assert joined[-1].data["status"] == "success"
    assert any(p.event == "values" and _said(p.data, "unblocked: unblocked") for p in joined)


def _resumes(run: Any) -> bool:
    return bool((run["metadata"] or {}).get("resumed_by"))


def _said(values: dict[str, Any], text: str) -> bool:
    return any(message.get("content") == text for message in values.get("messages", []))


def test_killed_replica_run_is_finished_by_the_other(replicas: Stack) -> None:
    second = replicas.sdk("api2")
    thread_id, run_id = replicas.blocked_run(start_on="api", watch_on="api2")

    _kill(replicas, "api")

    finished = replicas.wait_for(
        "the takeover",
        lambda: (r := second.runs.get(thread_id, run_id))["status"] == "success" and r,
        timeout=60,
    )
    assert finished["metadata"]["taken_over_by"] == finished["metadata"]["executed_by"]
    state = dict(second.threads.get_state(thread_id))
    assert final_answer(state) == "unblocked: unblocked"


async def test_a_stream_cut_by_a_killed_replica_goes_on_from_the_other(replicas: Stack) -> None:
    """Behind a load balancer, a client streams a resumable run from the first replica, which
    is SIGKILLed mid-run. The SDK reconnects by itself (to the stream's `Location`, with
    `Last-Event-ID`) and lands on the second replica, which takes the run over: the client
    sees the run to its end, with no event twice."""
    ports = [int(replicas.url(name).rsplit(":", 1)[1]) for name in ("api", "api2")]
    question = {"messages": [{"role": "user", "content": "block the run"}]}
    parts: list[Any] = []
    async with balancer(ports) as url:
        client = get_client(url=url, api_key=None)
        thread_id = (await client.threads.create())["thread_id"]
        modes = ["values", "updates"]
        stream = client.runs.stream(
            thread_id, "agent", input=question, stream_mode=modes, stream_resumable=True
        )
        async for part in stream:
            parts.append(part)
            if part.event == "updates" and "model" in part.data and "api" in replicas.processes:
                _kill(replicas, "api")  # the model called `block`: the run is mid-tool

    kept = [part for part in parts if part.event != "metadata"]
    ids = [tuple(map(int, part.id.split("-"))) for part in kept]
    assert [part.event for part in parts].count("metadata") == 2  # one per connection
    assert ids == sorted(set(ids))  # no event twice, none out of order
    assert kept[-1].event == "end" and kept[-1].data["status"] == "success"
    assert any(p.event == "values" and _said(p.data, "unblocked: unblocked") for p in kept)
    run = replicas.sdk("api2").runs.get(thread_id, parts[0].data["run_id"])
    assert run["metadata"]["taken_over_by"] == run["metadata"]["executed_by"]


def _kill(stack: Stack, name: str) -> None:
    dead = stack.processes.pop(name)
    os.killpg(dead.pid, signal.SIGKILL)
    dead.wait()


def test_killed_replica_resume_is_finished_by_the_other(replicas: Stack) -> None:
    first = replicas.sdk("api")
    thread_id = first.threads.create()["thread_id"]
    question = {"messages": [{"role": "user", "content": "resume slowly"}]}
    first.runs.create(thread_id, "agent", input=question)

    def resuming() -> Any:  # on the second replica, which receives the callbacks
        runs = first.runs.list(thread_id)
        return next((r for r in runs if r["status"] == "running" and _resumes(r)), None)

    resume = replicas.wait_for("the resume run to start", resuming)
    _kill(replicas, "api2")

    finished = replicas.wait_for(
        "the takeover of the resume",
        lambda: (r := first.runs.get(thread_id, resume["run_id"]))["status"] == "success" and r,
    )
    assert finished["metadata"]["taken_over_by"] == finished["metadata"]["executed_by"]
    assert finished["metadata"]["executed_by"] != resume["metadata"]["executed_by"]
    state = dict(first.threads.get_state(thread_id))
    assert final_answer(state) == "resumed: echo: first, unblocked"
    assert [record.status for record in replicas.records(thread_id)] == [CallStatus.APPLIED]
    assert first.threads.get(thread_id)["status"] == "idle"


def test_a_run_on_one_replica_is_cancelled_from_the_other(replicas: Stack) -> None:
    first, second = replicas.sdk("api"), replicas.sdk("api2")
    thread_id, run_id = replicas.blocked_run(start_on="api", watch_on="api2")

    second.runs.cancel(thread_id, run_id, wait=True)

    assert first.runs.get(thread_id, run_id)["status"] == "interrupted"
    assert first.threads.get(thread_id)["status"] != "busy"
    assert "unblocked" not in [
        m["content"] for m in tool_messages(dict(first.threads.get_state(thread_id)))
    ]


def test_multitask_interrupt_on_the_other_replica_stops_the_active_run(replicas: Stack) -> None:
    first, second = replicas.sdk("api"), replicas.sdk("api2")
    thread_id, active = replicas.blocked_run(start_on="api", watch_on="api2")

    second.runs.create(thread_id, "agent", input=QUESTION, multitask_strategy="interrupt")

    state = replicas.wait_done(thread_id)

    assert final_answer(state) == "answer: echo: hello"
    assert first.runs.get(thread_id, active)["status"] == "interrupted"


def test_api_workers_share_one_port_like_replicas(tmp_path: Path) -> None:
    """`api_workers = 2`: two API processes on one port; a thread's run, dispatch, callback and
    resume may each land on either, and the thread finishes with one result."""
    services.check_redis()
    vhost = services.new_vhost()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    stack = Stack(production_env(tmp_path, vhost, prefix, GRAPHRELAY_API_WORKERS="2"), tmp_path)
    try:
        stack.start("api", "io")
        thread_ids = [stack.start_thread("hello there") for _ in range(4)]
        for thread_id in thread_ids:
            state = stack.wait_done(thread_id)
            assert final_answer(state) == "answer: echo: hello"
            [record] = stack.records(thread_id)
            assert record.attempts == 1
    finally:
        stack.stop()
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)
