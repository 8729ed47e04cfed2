"""Run events over real Redis pub/sub: a subscriber on one replica gets another replica's
events in order, and a replica's own subscribers get each of its events once; kept events
(resumable streams) replay after any id they were given, on any replica, each once; event
data is encoded as FastAPI would encode it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from unittest.mock import ANY

import orjson
import pytest
from fastapi.encoders import jsonable_encoder
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import Interrupt

from graphrelay.backends.memory import LocalEvents
from graphrelay.backends.redis.events import RedisEvents
from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.server.ports import RunEvents
from graphrelay.server.streaming import END, FROM_START, Event, to_json, valid_event_id
from tests.support import services


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[RedisEvents, RedisEvents]]:
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    keys = RedisKeys(prefix)
    first, second = RedisEvents(services.REDIS_URL, keys), RedisEvents(services.REDIS_URL, keys)
    await first.start()
    await second.start()
    yield first, second
    await first.close()
    await second.close()


async def _take(queue: asyncio.Queue[Event], count: int) -> list[Event]:
    return [await asyncio.wait_for(queue.get(), timeout=10) for _ in range(count)]


async def test_another_replicas_events_arrive_in_order_and_own_ones_once(
    replicas: tuple[RedisEvents, RedisEvents],
) -> None:
    first, second = replicas
    here = await first.subscribe("run-1")
    there = await second.subscribe("run-1")

    for n in range(5):
        first.publish("run-1", "values", {"n": n})
    first.finish("run-1", "success")

    expected = [Event("values", {"n": n}) for n in range(5)] + [
        Event(END, {"run_id": "run-1", "status": "success"})
    ]
    assert await _take(there, 6) == expected
    assert await _take(here, 6) == expected
    # A marker from the second replica comes after any echo of the first's own events.
    second.publish("run-1", "marker", {})
    assert await _take(here, 1) == [Event("marker", {})]
    assert here.empty()


async def test_unsubscribed_replicas_get_nothing(
    replicas: tuple[RedisEvents, RedisEvents],
) -> None:
    first, second = replicas
    there = await second.subscribe("thread:t")
    second.unsubscribe("thread:t", there)
    watcher = await first.subscribe("thread:t")

    second.publish("thread:t", "custom", {"fraction": 0.5})

    assert await _take(watcher, 1) == [Event("custom", {"fraction": 0.5})]
    assert there.empty()


async def test_local_events_stay_in_the_process() -> None:
    events = LocalEvents()
    queue = await events.subscribe("run-1")
    assert events.wanted("run-1") and not events.wanted("run-2")

    events.publish("run-1", "values", {"n": 1})
    events.unsubscribe("run-1", queue)
    events.publish("run-1", "values", {"n": 2})

    assert await _take(queue, 1) == [Event("values", {"n": 1})]
    assert queue.empty() and not events.wanted("run-1")


async def _kept_run(events: RunEvents, run_id: str, count: int) -> list[Event]:
    """Publish `count` kept events and the end of `run_id`; what a subscriber from the
    start saw (with their ids)."""
    watcher = await events.subscribe(run_id, FROM_START)
    for n in range(count):
        events.publish(run_id, "values", {"n": n}, keep=True)
    events.finish(run_id, "success", keep=True)
    seen = await _take(watcher, count + 1)
    events.unsubscribe(run_id, watcher)
    return seen


async def test_kept_events_replay_after_the_id_given_on_one_process() -> None:
    events = LocalEvents()
    seen = await _kept_run(events, "run-1", 4)

    again = await events.subscribe("run-1", seen[1].id)

    assert [event.data for event in seen[:4]] == [{"n": n} for n in range(4)]
    assert all(event.id for event in seen) and len({event.id for event in seen}) == 5
    assert await _take(again, 3) == seen[2:]
    assert again.empty()
    assert (await events.subscribe("run-1")).empty()  # without an id: from now on only


async def test_a_restarted_process_streams_its_new_events_to_a_client_of_the_old_one() -> None:
    before = await _kept_run(LocalEvents(), "run-1", 3)  # a process that then died
    restarted = LocalEvents()
    await asyncio.sleep(0.002)  # ids start from the process's start time in ms

    resumed = await restarted.subscribe("run-1", before[1].id)  # nothing kept survives
    restarted.publish("run-1", "values", {"n": "again"}, keep=True)

    assert await _take(resumed, 1) == [Event("values", {"n": "again"}, ANY)]


async def test_kept_events_replay_on_another_replica_with_the_same_ids(
    replicas: tuple[RedisEvents, RedisEvents],
) -> None:
    first, second = replicas
    seen = await _kept_run(first, "run-2", 4)  # its own subscriber: each event once

    resumed = await second.subscribe("run-2", seen[1].id)

    assert [event.data for event in seen[:4]] == [{"n": n} for n in range(4)]
    assert seen[-1] == Event(END, {"run_id": "run-2", "status": "success"}, seen[-1].id)
    assert await _take(resumed, 3) == seen[2:]
    await asyncio.sleep(0.1)
    assert resumed.empty()


async def test_a_replay_racing_live_events_gives_each_event_once_in_order(
    replicas: tuple[RedisEvents, RedisEvents],
) -> None:
    first, second = replicas

    async def publish() -> None:
        for n in range(300):
            first.publish("run-3", "values", {"n": n}, keep=True)
            if n % 20 == 0:
                await asyncio.sleep(0)  # let the sender flush while the replay reads

    publishing = asyncio.create_task(publish())
    queue = await second.subscribe("run-3", FROM_START)
    await publishing

    assert [event.data["n"] for event in await _take(queue, 300)] == list(range(300))
    await asyncio.sleep(0.1)
    assert queue.empty()


def test_event_ids_are_checked() -> None:
    assert all(map(valid_event_id, ["-1", "17", "1732420000000-3"]))
    assert not any(map(valid_event_id, ["", "-2", "abc", "1-2-3", "1-", "(5", "9" * 20]))


def test_event_data_is_encoded_as_jsonable_encoder_would() -> None:
    state = {
        "messages": [
            HumanMessage("hi", id="1"),
            AIMessage("", tool_calls=[{"name": "t", "args": {"n": 1}, "id": "c"}], id="2"),
        ],
        "__interrupt__": (Interrupt(value={"task_id": "gr-1"}, id="i"),),
        "tags": {"only"},
        "at": datetime(2026, 11, 24, tzinfo=UTC),
        7: "a key that is not text",
    }

    as_before = json.loads(json.dumps(jsonable_encoder(state)))  # what the API used to send
    assert orjson.loads(to_json(state)) == as_before
    assert orjson.loads(to_json({"x": orjson.Fragment(to_json(state))})) == {"x": as_before}
