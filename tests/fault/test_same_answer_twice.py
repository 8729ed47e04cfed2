"""The same answer sent twice at once is applied once (issue 13, fault 6).

A node asks "send the payment?" then "are you sure?" and pays after two "yes"
(`tests/support/payment.py`). Checking a thread's state and claiming it is one atomic step on
every path that starts work on it, across replicas: two clients sending the first "yes" at
once (by `runs.create`, `runs.wait` or `runs.stream`, to one replica or to two) get one 200
and one 409, and the thread waits on "are you sure?" with nothing paid. The automatic resumes
claim the thread too: a task callback racing the sweeper applies the outcome once, and a
client's answer racing an automatic resume is either refused (409, the thread was busy) or
taken, with the outcome picked up after it, never lost.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from graphrelay.bridge.calls import PENDING_INTERRUPT_TYPE, CallStatus
from graphrelay.testing.processes import free_port
from tests.support import services
from tests.support.payment import FIRST_QUESTION, SECOND_QUESTION, payments
from tests.support.stack import Stack, production_env, stack_env

THREADS = 5  # threads each scenario is tried on, as the report did
SWEPT_THREADS = 10  # the sweeper race has a narrower window: more tries
GRAPHS = json.dumps(
    {
        "payment": "tests.support.payment:build_payment",
        "checkout": "tests.support.payment:build_checkout",
    }
)
# A sweeper that looks every 20 ms and repairs at once: it races every callback.
QUOTE = "echo: quote"
EAGER_SWEEPER = {
    "GRAPHRELAY_SWEEPER_GRACE_SECONDS": "0",
    "GRAPHRELAY_SWEEPER_PERIOD_SECONDS": "0.02",
}


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two API replicas on RabbitMQ and Redis, serving the payment graphs; no workers (the
    tests post the task callbacks themselves)."""
    services.check_redis()
    vhost, prefix = services.new_vhost(), f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp("claims")
    env = production_env(data_dir, vhost, prefix, GRAPHRELAY_GRAPHS=GRAPHS,
                         GRAPHRELAY_API2_PORT=str(free_port()))  # fmt: skip
    stack = Stack(env, data_dir)
    try:
        stack.start("api", "api2")
        yield stack
    finally:
        stack.stop()
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Stack]:
    """One API process on the embedded profile; the test adds a sweeper."""
    stack = Stack(stack_env(tmp_path, GRAPHRELAY_PROFILE="embedded", GRAPHRELAY_GRAPHS=GRAPHS),
                  tmp_path)  # fmt: skip
    try:
        stack.start("api")
        yield stack
    finally:
        stack.stop()


def _clients(stack: Stack, replicas: int) -> list[LangGraphClient]:
    names = ["api", "api2"] if replicas == 2 else ["api", "api"]
    return [get_client(url=stack.url(name), api_key=None) for name in names]


async def _answer(
    client: LangGraphClient, thread_id: str, resume: Any, route: str, graph: str = "payment"
) -> int:
    """Send `resume` as a command by `route` (`create`, `wait` or `stream`); the answer's
    status code."""
    command: Any = {"resume": resume}
    try:
        if route == "create":
            await client.runs.create(thread_id, graph, command=command)
        elif route == "wait":
            await client.runs.wait(thread_id, graph, command=command)
        else:
            [_ async for _ in client.runs.stream(thread_id, graph, command=command)]
    except httpx.HTTPStatusError as refused:
        return refused.response.status_code
    return 200


async def _settled(client: LangGraphClient, thread_id: str) -> dict[str, Any]:
    """Wait until no run is active on the thread; the thread then."""
    for _ in range(1200):
        runs = await client.runs.list(thread_id, limit=100)
        thread = await client.threads.get(thread_id)
        active = [run for run in runs if run["status"] in ("pending", "running")]
        if thread["status"] != "busy" and not active:
            return dict(thread)
        await asyncio.sleep(0.05)
    raise TimeoutError(f"thread {thread_id} stayed busy")


async def _questions(client: LangGraphClient, thread_id: str) -> list[Any]:
    """The values of the interrupts the thread waits on."""
    state = await client.threads.get_state(thread_id)
    return [item["value"] for item in state["interrupts"]]


@pytest.mark.parametrize("route", ["create", "wait", "stream"])
@pytest.mark.parametrize("replicas", [1, 2])
async def test_the_same_answer_sent_twice_at_once_is_applied_once(
    production: Stack, replicas: int, route: str
) -> None:
    clients = _clients(production, replicas)
    for _ in range(THREADS):
        thread_id = (await clients[0].threads.create())["thread_id"]
        await clients[0].runs.wait(thread_id, "payment", input={})
        assert await _questions(clients[0], thread_id) == [FIRST_QUESTION]

        answers = await asyncio.gather(
            *(_answer(client, thread_id, "yes", route) for client in clients)
        )

        assert sorted(answers) == [200, 409]
        thread = await _settled(clients[0], thread_id)
        assert thread["status"] == "interrupted"
        assert await _questions(clients[0], thread_id) == [SECOND_QUESTION]
        assert payments(production.data_dir, thread_id) == []
        runs = await clients[0].runs.list(thread_id, limit=100)
        assert [run["status"] for run in runs] == ["success", "success"]  # the answer, the start


async def _checkout(client: LangGraphClient) -> tuple[str, str, str]:
    """A checkout waiting on its background quote and its first question; the thread id, the
    quote's task id and the question's interrupt id."""
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "checkout", input={})
    state = await client.threads.get_state(thread_id)
    by_kind = {_is_call(item["value"]): item for item in state["interrupts"]}
    return thread_id, by_kind[True]["value"]["task_id"], by_kind[False]["id"]


def _is_call(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == PENDING_INTERRUPT_TYPE


def _callback(stack: Stack, replica: str, thread_id: str, task_id: str) -> httpx.Response:
    """The worker's signed callback for the quote, posted to `replica`."""
    body = {"task_id": task_id, "thread_id": thread_id, "status": "completed",
            "result": QUOTE}  # fmt: skip
    return stack.post_callback(body, replica=replica)


async def _appliers(client: LangGraphClient, thread_id: str, task_id: str) -> list[dict[str, Any]]:
    """The runs that resumed the thread with the task's outcome."""
    runs = await client.runs.list(thread_id, limit=100)
    return [run for run in runs if task_id in (run["metadata"] or {}).get("task_ids", [])]


@pytest.mark.parametrize("profile", ["embedded", "production"])
async def test_the_sweeper_racing_a_callback_applies_the_outcome_once(
    profile: str, request: pytest.FixtureRequest
) -> None:
    """The callback wakes the API, and the sweeper finds the same stored outcome within 20 ms:
    both try to resume the thread; one run applies the outcome."""
    stack: Stack = request.getfixturevalue(profile)
    stack.start("sweeper", **EAGER_SWEEPER)
    try:
        client = _clients(stack, 1)[0]
        for _ in range(SWEPT_THREADS):
            thread_id, task_id, _question = await _checkout(client)

            await asyncio.to_thread(_store_outcome, stack, task_id)  # the sweeper sees it now
            accepted = await asyncio.to_thread(_callback, stack, "api", thread_id, task_id)

            assert accepted.status_code == 202
            await _applied_and_settled(client, thread_id, task_id)
            assert len(await _appliers(client, thread_id, task_id)) == 1
            assert await _questions(client, thread_id) == [FIRST_QUESTION]
    finally:
        stack.stop("sweeper")


def _store_outcome(stack: Stack, task_id: str) -> None:
    """Store the quote's outcome, as the worker does before it calls back."""
    ledger = stack.ledger()
    try:
        ledger.finish(task_id, CallStatus.COMPLETED, QUOTE, None)
    finally:
        ledger.close()


async def _applied_and_settled(client: LangGraphClient, thread_id: str, task_id: str) -> None:
    """Wait until the quote is applied and the thread has settled."""
    for _ in range(1200):
        if await _appliers(client, thread_id, task_id):
            break
        await asyncio.sleep(0.05)
    await _settled(client, thread_id)


@pytest.mark.parametrize("replicas", [1, 2])
async def test_a_client_answer_racing_an_automatic_resume(production: Stack, replicas: int) -> None:
    """The first "yes" (twice, by two clients) and the quote's callback arrive at once. Each
    answer is taken only while no other run holds the thread (else 409), the quote is applied
    by exactly one run, never lost, and nothing is paid."""
    clients = _clients(production, replicas)
    for _ in range(THREADS):
        thread_id, task_id, question = await _checkout(clients[0])
        answer = {question: "yes"}

        callback = asyncio.to_thread(_callback, production, "api2" if replicas == 2 else "api",
                                     thread_id, task_id)  # fmt: skip
        accepted, *answers = await asyncio.gather(
            callback,
            *(_answer(client, thread_id, answer, "create", "checkout") for client in clients),
        )

        assert accepted.status_code == 202
        assert sorted(answers) in ([200, 409], [409, 409])
        await _settled(clients[0], thread_id)
        assert len(await _appliers(clients[0], thread_id, task_id)) == 1
        _no_run_admitted_while_another_held(await clients[0].runs.list(thread_id, limit=100))
        if answers == [409, 409]:  # the automatic resume held the thread both times
            assert await _questions(clients[0], thread_id) == [FIRST_QUESTION]
            assert await _answer(clients[0], thread_id, answer, "create", "checkout") == 200
            await _settled(clients[0], thread_id)
        assert await _questions(clients[0], thread_id) == [SECOND_QUESTION]
        assert payments(production.data_dir, thread_id) == []


def _no_run_admitted_while_another_held(runs: list[Any]) -> None:
    """No client's run was created while an automatic resume that it did not start itself
    was under way (a resume started by a client's run lies within that run)."""
    clients = [run for run in runs if not (run["metadata"] or {}).get("resumed_by")]
    resumes = [run for run in runs if (run["metadata"] or {}).get("resumed_by")]
    for run in clients:
        start, end = _when(run)
        for resume in resumes:
            resume_start, resume_end = _when(resume)
            nested = start <= resume_start <= end
            held = resume_start < start < resume_end
            assert nested or not held, f"run {run['run_id']} was admitted during {resume}"


def _when(run: Any) -> tuple[datetime, datetime]:
    """When a run was created and when it was last written (its end, once it ended)."""
    return datetime.fromisoformat(run["created_at"]), datetime.fromisoformat(run["updated_at"])
