"""Run events over real Redis pub/sub: a subscriber on one replica gets another replica's
events in order, and a replica's own subscribers get each of its events once; event data is
encoded as FastAPI would encode it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from fastapi.encoders import jsonable_encoder
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import Interrupt

from graphrelay.api.events import END, Event, LocalEvents, RedisEvents, to_json
from tests.support import services


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[RedisEvents, RedisEvents]]:
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    first, second = RedisEvents(services.REDIS_URL, prefix), RedisEvents(services.REDIS_URL, prefix)
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

    expected = [("values", {"n": n}) for n in range(5)] + [
        (END, {"run_id": "run-1", "status": "success"})
    ]
    assert await _take(there, 6) == expected
    assert await _take(here, 6) == expected
    # A marker from the second replica comes after any echo of the first's own events.
    second.publish("run-1", "marker", {})
    assert await _take(here, 1) == [("marker", {})]
    assert here.empty()


async def test_unsubscribed_replicas_get_nothing(
    replicas: tuple[RedisEvents, RedisEvents],
) -> None:
    first, second = replicas
    there = await second.subscribe("thread:t")
    second.unsubscribe("thread:t", there)
    watcher = await first.subscribe("thread:t")

    second.publish("thread:t", "custom", {"fraction": 0.5})

    assert await _take(watcher, 1) == [("custom", {"fraction": 0.5})]
    assert there.empty()


async def test_local_events_stay_in_the_process() -> None:
    events = LocalEvents()
    queue = await events.subscribe("run-1")
    assert events.wanted("run-1") and not events.wanted("run-2")

    events.publish("run-1", "values", {"n": 1})
    events.unsubscribe("run-1", queue)
    events.publish("run-1", "values", {"n": 2})

    assert await _take(queue, 1) == [("values", {"n": 1})]
    assert queue.empty() and not events.wanted("run-1")


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
