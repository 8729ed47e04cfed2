"""Append-only list channels stored as delta chains, on a real Redis: reads, prune, copy,
delete_for_runs, a lost base, TTL."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest
import redis
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from graphrelay.backends.redis.saver import RedisSaver
from tests.support import services

SNAPSHOT_EVERY = 4


class State(TypedDict):
    log: Annotated[list[str], operator.add]  # appended to: deltas
    items: list[str]  # replaced: extended on most steps, reversed on every third
    note: str  # not a list: always whole
    target: int


def _step(state: State) -> dict[str, Any]:
    n = len(state["log"])
    items = state["items"][::-1] if n % 3 == 2 else [*state["items"], f"item {n}"]
    return {"log": [f"step {n}"], "items": items, "note": f"after step {n}"}


def _graph(saver: Any) -> Any:
    builder = StateGraph(State)
    builder.add_node("step", _step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges(
        "step", lambda s: "step" if len(s["log"]) < s["target"] else END, ["step", END]
    )
    return builder.compile(checkpointer=saver)


def _config(thread_id: str | None = None) -> Any:
    return {"configurable": {"thread_id": thread_id or str(uuid.uuid4())}}


START_STATE = {"log": [], "items": [], "note": "", "target": 10}


@pytest.fixture
def saver() -> Iterator[RedisSaver]:
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}:cp"
    instance = RedisSaver(services.REDIS_URL, prefix=prefix, snapshot_every=SNAPSHOT_EVERY)
    yield instance
    instance.close()
    services.clear_prefix(prefix)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    instance = redis.Redis.from_url(services.REDIS_URL)
    yield instance
    instance.close()


def _stored(client: redis.Redis, saver: RedisSaver, thread_id: str) -> tuple[Any, Any]:
    """The thread's root-namespace values hash and delta hash."""
    base = f"{saver.prefix}:{{{thread_id}}}"
    return client.hgetall(f"{base}:b:"), client.hgetall(f"{base}:d:")


def _of(channel: str, fields: Any) -> list[bytes]:
    return [f for f in fields if f.startswith(channel.encode() + b"\x1f")]


def _history(graph: Any, config: Any) -> list[Any]:
    return [(h.values, h.next, h.metadata["step"]) for h in graph.get_state_history(config)]


def test_history_with_delta_chains_matches_the_in_memory_saver(
    saver: RedisSaver, client: redis.Redis
) -> None:
    graph, config = _graph(saver), _config()
    final = graph.invoke(START_STATE, config)
    memory_graph, memory_config = _graph(InMemorySaver()), _config()
    memory_graph.invoke(START_STATE, memory_config)

    assert final["log"] == [f"step {n}" for n in range(10)]
    assert _history(graph, config) == _history(memory_graph, memory_config)
    for snapshot in graph.get_state_history(config):  # get_tuple agrees with list
        assert graph.get_state(snapshot.config).values == snapshot.values
    values, deltas = _stored(client, saver, config["configurable"]["thread_id"])
    assert _of("log", deltas) and _of("items", deltas)
    assert len(_of("items", deltas)) < len(_of("items", values)) - 3  # reversals: whole
    assert _of("note", deltas) == []


def test_a_snapshot_is_written_every_n_versions(saver: RedisSaver, client: redis.Redis) -> None:
    graph, config = _graph(saver), _config()
    graph.invoke(START_STATE, config)

    values, deltas = _stored(client, saver, config["configurable"]["thread_id"])
    log = _of("log", values)
    assert len(log) == 11  # the input's version and one per step
    assert sum(not values[f].startswith(b"+") for f in log) == 3  # versions 0, 4 and 8
    assert set(_of("log", deltas)) == {f for f in log if values[f].startswith(b"+")}
    for field in log:
        pieces = 1
        while field in deltas:
            field, pieces = deltas[field], pieces + 1
        assert pieces <= SNAPSHOT_EVERY


def test_prune_keeps_the_chain_the_latest_checkpoint_reads(
    saver: RedisSaver, client: redis.Redis
) -> None:
    graph, config = _graph(saver), _config()
    before = graph.invoke(START_STATE, config)
    thread_id = config["configurable"]["thread_id"]

    saver.prune([thread_id])

    assert graph.get_state(config).values == before
    values, deltas = _stored(client, saver, thread_id)
    assert len(_of("log", values)) == 3  # version 10 is two deltas on the snapshot of 8
    assert len(_of("log", deltas)) == 2
    after = graph.invoke({"target": 15}, config)
    assert after["log"] == [f"step {n}" for n in range(15)]


def test_copy_thread_copies_the_chains(saver: RedisSaver) -> None:
    graph, source = _graph(saver), _config()
    graph.invoke(START_STATE, source)
    target = _config()

    saver.copy_thread(source["configurable"]["thread_id"], target["configurable"]["thread_id"])

    assert _history(graph, target) == _history(graph, source)
    assert graph.invoke({"target": 12}, target)["log"][-1] == "step 11"
    assert graph.get_state(source).values["log"][-1] == "step 9"


def _put(saver: RedisSaver, thread_id: str, parent: str | None, log: list[str], run_id: str) -> str:
    """Put one checkpoint holding `log` in a new version; its id."""
    checkpoint = empty_checkpoint()
    version = saver.get_next_version(None if parent is None else f"{len(log) - 1:032}.0", None)
    checkpoint["channel_values"] = {"log": log}
    checkpoint["channel_versions"] = {"log": version}
    config = _config(thread_id)
    if parent:
        config["configurable"]["checkpoint_id"] = parent
    saver.put(config, checkpoint, {"run_id": run_id}, {"log": version})
    return checkpoint["id"]


def _read(saver: RedisSaver, thread_id: str, checkpoint_id: str) -> Any:
    config = _config(thread_id)
    config["configurable"]["checkpoint_id"] = checkpoint_id
    found = saver.get_tuple(config)
    assert found is not None
    return found.checkpoint["channel_values"]["log"]


def test_delete_for_runs_keeps_the_bases_another_run_builds_on(
    saver: RedisSaver, client: redis.Redis
) -> None:
    thread_id, log = str(uuid.uuid4()), ["a"]
    first = _put(saver, thread_id, None, log, run_id="run-a")
    second = _put(saver, thread_id, first, [*log, "b"], run_id="run-b")

    saver.delete_for_runs(["run-a"])

    remaining = [t.config["configurable"]["checkpoint_id"] for t in saver.list(_config(thread_id))]
    assert remaining == [second]
    assert _read(saver, thread_id, second) == ["a", "b"]
    values, deltas = _stored(client, saver, thread_id)
    assert len(values) == 2 and len(deltas) == 1  # the base stays while its delta is read


def test_a_delta_whose_base_was_deleted_is_written_whole(
    saver: RedisSaver, client: redis.Redis
) -> None:
    thread_id, log = str(uuid.uuid4()), ["a"]
    first = _put(saver, thread_id, None, log, run_id="run")
    values, _ = _stored(client, saver, thread_id)
    client.hdel(f"{saver.prefix}:{{{thread_id}}}:b:", *values)  # e.g. pruned by another replica

    second = _put(saver, thread_id, first, [*log, "b"], run_id="run")

    assert _read(saver, thread_id, second) == ["a", "b"]
    assert _stored(client, saver, thread_id)[1] == {}


def test_a_version_put_again_stays_readable(saver: RedisSaver) -> None:
    thread_id, log = str(uuid.uuid4()), ["a"]
    first = _put(saver, thread_id, None, log, run_id="run")
    checkpoint = saver.get_tuple(_config(thread_id))
    assert checkpoint is not None

    saver.put(checkpoint.config, checkpoint.checkpoint, checkpoint.metadata,
              checkpoint.checkpoint["channel_versions"])  # fmt: skip

    assert _read(saver, thread_id, first) == ["a"]


def test_ttl_covers_the_delta_hash_and_reads_refresh_it(saver: RedisSaver) -> None:
    expiring = RedisSaver(services.REDIS_URL, prefix=saver.prefix, ttl_seconds=60)
    graph, config = _graph(expiring), _config()
    graph.invoke(START_STATE, config)
    client = redis.Redis.from_url(services.REDIS_URL)
    deltas = f"{saver.prefix}:{{{config['configurable']['thread_id']}}}:d:"
    assert client.hlen(deltas) > 0
    assert 0 < client.pttl(deltas) <= 60_000
    client.pexpire(deltas, 5_000)

    graph.get_state(config)

    assert 55_000 < client.pttl(deltas) <= 60_000
    client.close()
    expiring.close()
