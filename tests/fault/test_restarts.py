"""Issue 5, must-show 2: the broker, Redis and the API go away while work is in flight, and
every run still completes with each background call applied once.

- RabbitMQ (a private node) is restarted while 1,000 published tasks wait in its queue;
- a private Redis with AOF holding the ledger, checkpoints and runs is SIGKILLed and started
  again while threads wait on their calls;
- the API is down for 60 s while the workers' callbacks retry.
(A worker SIGKILLed mid-task is `test_worker_kill.py`.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph_sdk import get_client

from graphrelay.backends import open_ledger
from graphrelay.bridge.calls import SWEPT_STATUSES, CallStatus
from graphrelay.bridge.ledger import Ledger
from tests.support import services
from tests.support.stack import Stack, final_answer, production_env, stack_env, tool_messages

QUESTION = {"messages": [{"role": "user", "content": "hello there"}]}


def _unfinished(ledger: Ledger) -> int:
    """Records not yet applied (the ledger indexes every such status)."""
    now = time.time() + 60
    return sum(len(ledger.stale(status, now, 100_000)) for status in SWEPT_STATUSES)


async def _start_runs(url: str, count: int) -> list[str]:
    client = get_client(url=url, api_key=None)
    limit = asyncio.Semaphore(32)

    async def one() -> str:
        async with limit:
            thread = await client.threads.create()
            await client.runs.create(thread["thread_id"], "agent", input=QUESTION)
            return str(thread["thread_id"])

    return list(await asyncio.gather(*(one() for _ in range(count))))


def _assert_all_answered(stack: Stack, thread_ids: list[str]) -> None:
    client = stack.sdk()
    idle: set[str] = set()
    while page := client.threads.search(status="idle", limit=1000, offset=len(idle)):
        idle |= {t["thread_id"] for t in page}
    assert idle >= set(thread_ids)
    for thread_id in thread_ids[:: max(1, len(thread_ids) // 25)]:  # a sample, read in full
        state = dict(client.threads.get_state(thread_id))
        assert final_answer(state) == "answer: echo: hello"
        assert len(tool_messages(state)) == 1


@pytest.fixture
def private_rabbit(tmp_path: Path) -> Iterator[services.PrivateRabbit]:
    rabbit = services.PrivateRabbit(tmp_path / "rabbit")
    rabbit.start()
    try:
        yield rabbit
    finally:
        rabbit.stop()


def test_rabbitmq_restarted_with_1000_queued_tasks(
    tmp_path: Path, private_rabbit: services.PrivateRabbit
) -> None:
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    env = production_env(tmp_path, "", prefix)
    env["GRAPHRELAY_BROKER_URL"] = private_rabbit.url
    stack = Stack(env, tmp_path)
    ledger = open_ledger(services.REDIS_URL, prefix)
    try:
        stack.start("api")  # no worker yet: every task waits in the queue
        thread_ids = asyncio.run(_start_runs(stack.base_url, 1000))
        stack.wait_for(
            "1,000 tasks published",
            lambda: len(ledger.stale(CallStatus.DISPATCHED, time.time() + 60, 2000)) == 1000,
            timeout=300,
        )

        private_rabbit.stop()
        private_rabbit.start()
        stack.start("io")

        stack.wait_for("every call applied", lambda: _unfinished(ledger) == 0, timeout=400)
        _assert_all_answered(stack, thread_ids)
    finally:
        stack.stop()
        ledger.close()
        services.clear_prefix(prefix)


def test_redis_with_aof_killed_and_restarted_mid_run(tmp_path: Path) -> None:
    redis_server = services.PrivateRedis(tmp_path)
    redis_server.start()
    vhost = services.new_vhost()
    url = redis_server.url
    env = stack_env(
        tmp_path, GRAPHRELAY_PROFILE="production",
        GRAPHRELAY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        GRAPHRELAY_RESULT_BACKEND=url, GRAPHRELAY_LEDGER_URL=url, GRAPHRELAY_CHECKPOINTER_URL=url,
    )  # fmt: skip
    stack = Stack(env, tmp_path)
    try:
        stack.start("api", "io")
        thread_ids = [stack.start_thread("slow call") for _ in range(10)]
        for thread_id in thread_ids:
            stack.pending(thread_id)

        redis_server.kill()  # SIGKILL while the ten calls run on the worker
        redis_server.start()

        for thread_id in thread_ids:
            state = stack.wait_done(thread_id, timeout=120)
            assert final_answer(state) == "answer: echo: slow"
            assert len(tool_messages(state)) == 1
            [record] = stack.records(thread_id)
            assert record.status == CallStatus.APPLIED
    finally:
        stack.stop()
        redis_server.kill()
        services.drop_vhost(vhost)


def test_api_down_for_60_s_while_callbacks_retry(tmp_path: Path) -> None:
    services.check_redis()
    vhost = services.new_vhost()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    stack = Stack(production_env(tmp_path, vhost, prefix), tmp_path)
    try:
        stack.start("api", "io")
        thread_ids = [stack.start_thread("slow call") for _ in range(5)]
        for thread_id in thread_ids:
            stack.pending(thread_id)

        api = stack.processes.pop("api")
        os.kill(api.pid, signal.SIGKILL)
        api.wait()
        time.sleep(60)  # the calls finish meanwhile; their callbacks fail and back off
        records = [record for t in thread_ids for record in stack.records(t)]
        assert {record.status for record in records} == {CallStatus.COMPLETED}
        stack.start("api")

        for thread_id in thread_ids:
            state = stack.wait_done(thread_id, timeout=120)
            assert final_answer(state) == "answer: echo: slow"
            assert len(tool_messages(state)) == 1
            [record] = stack.records(thread_id)
            assert record.status == CallStatus.APPLIED and record.attempts == 1
    finally:
        stack.stop()
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)
