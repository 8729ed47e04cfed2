"""The Redis saver under real graphs: interrupts, time travel, AOF restarts, TTL, storage."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
import redis
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from graphrelay.backends.redis.saver import RedisSaver
from tests.support import services


class State(TypedDict):
    log: Annotated[list[str], operator.add]
    fixed: str
    steps: int


def _graph(saver: RedisSaver, steps: int = 5, ask: bool = False) -> Any:
    def step(state: State) -> dict[str, Any]:
        return {"log": [f"step {state['steps']}"], "steps": state["steps"] + 1}

    def approve(state: State) -> dict[str, Any]:
        return {"log": [f"approved by {interrupt('approve?')}"]}

    builder = StateGraph(State)
    builder.add_node("step", step)
    builder.add_node("approve", approve)
    builder.add_edge(START, "step")
    builder.add_conditional_edges(
        "step", lambda s: "step" if s["steps"] < steps else ("approve" if ask else END)
    )
    builder.add_edge("approve", END)
    return builder.compile(checkpointer=saver)


@pytest.fixture
def saver() -> Iterator[RedisSaver]:
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}:cp"
    instance = RedisSaver(services.REDIS_URL, prefix=prefix)
    yield instance
    instance.close()
    services.clear_prefix(prefix)


def _config() -> Any:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


START_STATE = {"log": [], "fixed": "unchanged", "steps": 0}


def _history(saver: Any) -> list[tuple[Any, ...]]:
    graph, config = _graph(saver, steps=3, ask=True), _config()
    first = graph.invoke(START_STATE, config)
    final = graph.invoke(Command(resume="ada"), config)
    assert first["__interrupt__"][0].value == "approve?"
    assert final["log"] == ["step 0", "step 1", "step 2", "approved by ada"]
    return [(h.values, h.next, h.metadata["step"], len(h.tasks))
            for h in graph.get_state_history(config)]  # fmt: skip


def test_interrupt_resume_and_history_match_the_in_memory_saver(saver: RedisSaver) -> None:
    assert _history(saver) == _history(InMemorySaver())


async def _forked_history(saver: Any) -> list[tuple[Any, ...]]:
    graph, config = _graph(saver, steps=4), _config()
    await graph.ainvoke(START_STATE, config)
    history = [h async for h in graph.aget_state_history(config)]
    at_two = next(h for h in history if h.values.get("steps") == 2)
    forked = await graph.ainvoke(None, at_two.config)
    assert forked["log"] == ["step 0", "step 1", "step 2", "step 3"]
    return [(h.values, h.next, h.metadata["step"], h.metadata["source"])
            async for h in graph.aget_state_history(config)]  # fmt: skip


async def test_async_time_travel_matches_the_in_memory_saver(saver: RedisSaver) -> None:
    assert await _forked_history(saver) == await _forked_history(InMemorySaver())


def test_each_channel_version_is_stored_once(saver: RedisSaver) -> None:
    graph, config = _graph(saver, steps=10), _config()
    graph.invoke(START_STATE, config)

    blobs_key = f"{saver.prefix}:{{{config['configurable']['thread_id']}}}:b:"
    fields = [f.decode() for f in redis.Redis.from_url(services.REDIS_URL).hkeys(blobs_key)]
    fixed = [f for f in fields if f.startswith("fixed\x1f")]
    log = [f for f in fields if f.startswith("log\x1f")]
    checkpoints = len(list(graph.get_state_history(config)))
    assert checkpoints == 12
    assert len(fixed) == 1  # written with the input, never copied into later checkpoints
    assert len(log) == 11  # the input's version and one per step


def test_prune_keep_latest_keeps_the_state(saver: RedisSaver) -> None:
    graph, config = _graph(saver, steps=6), _config()
    before = graph.invoke(START_STATE, config)

    saver.prune([config["configurable"]["thread_id"]])

    assert len(list(graph.get_state_history(config))) == 1
    assert graph.get_state(config).values == before


def test_ttl_is_set_and_refreshed_on_read(saver: RedisSaver) -> None:
    expiring = RedisSaver(services.REDIS_URL, prefix=saver.prefix, ttl_seconds=60)
    graph, config = _graph(expiring, steps=2), _config()
    graph.invoke(START_STATE, config)
    client = redis.Redis.from_url(services.REDIS_URL)
    index = f"{saver.prefix}:{{{config['configurable']['thread_id']}}}:i:"
    client.pexpire(index, 5_000)

    graph.get_state(config)

    assert 55_000 < client.pttl(index) <= 60_000
    expiring.close()


def test_every_checkpoint_survives_a_redis_kill_and_aof_restart(tmp_path: Path) -> None:
    server = services.PrivateRedis(tmp_path)
    server.start()
    try:
        saver = RedisSaver(server.url, prefix="aof:cp")
        graph, config = _graph(saver, steps=8, ask=True), _config()
        graph.invoke(START_STATE, config)
        before = [(h.config, h.values, h.next) for h in graph.get_state_history(config)]

        server.kill()  # mid-run: the thread waits on its interrupt
        server.start()

        after = [(h.config, h.values, h.next) for h in graph.get_state_history(config)]
        assert after == before
        final = graph.invoke(Command(resume="after restart"), config)
        assert final["log"][-1] == "approved by after restart"
        saver.close()
    finally:
        server.kill()
