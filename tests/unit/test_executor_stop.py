"""Stopping a run that no live process executes: its lease ran out, so the replica asked to
stop it claims the run and ends it as interrupted, instead of waiting for a takeover."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph

from graphrelay.backends.memory import LocalEvents, LocalThreadLocks
from graphrelay.backends.sqlite.documents import SqliteDocuments
from graphrelay.backends.sqlite.leases import SqliteLeases
from graphrelay.backends.sqlite.ledger import SqliteLedger
from graphrelay.bridge.ledger import Ledger
from graphrelay.server.executor import MAX_TAKE_OVERS, RunExecutor
from graphrelay.server.records import RunOptions, RunRecord, ThreadRecord
from graphrelay.server.store import RunStore
from graphrelay.server.streaming import Event


class Nothing(TypedDict, total=False):
    done: bool


def _executor(tmp_path: Path) -> RunExecutor:
    builder = StateGraph(Nothing)
    builder.add_node("noop", lambda state: {"done": True})
    builder.add_edge(START, "noop")
    graphs: dict[str, Any] = {"noop": builder.compile(checkpointer=InMemorySaver())}
    return RunExecutor(
        graphs,
        Ledger(SqliteLedger(tmp_path / "ledger.sqlite")),
        LocalThreadLocks(),
        RunStore(SqliteDocuments(tmp_path / "runs.sqlite")),
        SqliteLeases(tmp_path / "runs.sqlite"),
        LocalEvents(),
    )


async def _claimed_elsewhere(executor: RunExecutor) -> RunRecord:
    """A running run that holds its thread, as another process claimed it."""
    thread = ThreadRecord(graph_id="noop")
    await executor.store.put_thread(thread)
    run = RunRecord(thread_id=thread.thread_id, assistant_id="noop", status="running")
    assert (await executor.store.claim(run)).claimed
    return run


async def test_a_run_whose_process_died_is_ended_by_the_replica_asked_to_stop_it(
    tmp_path: Path,
) -> None:
    executor = _executor(tmp_path)
    run = await _claimed_elsewhere(executor)
    await executor.leases.grant(run.run_id, "a-process-that-died", 0.01)
    await asyncio.sleep(0.05)
    ended = await executor.events.subscribe(run.run_id)

    assert await executor.stop(run.run_id, wait=0.1)

    stored = await executor.store.get_run(run.run_id)
    assert stored is not None and stored.status == "interrupted"
    assert (await executor.store.get_thread(run.thread_id)).status == "idle"  # type: ignore[union-attr]
    assert ended.get_nowait() == Event("end", {"run_id": run.run_id, "status": "interrupted"})
    assert await executor.leases.expired() == []  # released: nobody takes it over now


async def test_a_run_that_no_replica_stops_in_time_is_reported(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    run = await _claimed_elsewhere(executor)
    await executor.leases.grant(run.run_id, "a-live-process-elsewhere", 60)

    assert not await executor.stop(run.run_id, wait=0.2)
    assert (await executor.store.get_run(run.run_id)).status == "running"  # type: ignore[union-attr]


async def test_a_run_whose_take_over_keeps_failing_is_ended_with_the_reason(
    tmp_path: Path,
) -> None:
    """Its graph is no longer served: each take-over raises. It holds no other run, and after
    MAX_TAKE_OVERS tries it is ended `error` with the reason instead of tried forever."""
    executor = _executor(tmp_path)
    broken, fine = ThreadRecord(graph_id="gone", status="busy"), ThreadRecord(graph_id="noop")
    stuck = RunRecord(thread_id=broken.thread_id, assistant_id="gone", status="running")
    other = RunRecord(thread_id=fine.thread_id, assistant_id="noop", status="running",
                      options=RunOptions(input={"done": False}))  # fmt: skip
    for thread, run in ((broken, stuck), (fine, other)):
        await executor.store.put_thread(thread)
        assert (await executor.store.claim(run, if_busy="queue", if_interrupted="allow")).claimed
        await executor.leases.grant(run.run_id, "a-process-that-died", 0.01)
    executor.replicas.lease_seconds = 0.01  # a lease this process claims runs out at once

    taken = []
    for _ in range(MAX_TAKE_OVERS):
        await asyncio.sleep(0.05)  # every lease has run out
        taken.append(await executor.take_over_expired())
    await executor.drain()

    assert taken[0] == [other.run_id] and taken[1:] == [[]] * (MAX_TAKE_OVERS - 1)
    ended = await executor.store.get_run(stuck.run_id)
    assert ended is not None and ended.status == "error"
    assert ended.error == f"parked after {MAX_TAKE_OVERS} failed take-overs: KeyError: 'gone'"
    assert (await executor.store.get_thread(broken.thread_id)).status == "error"  # type: ignore[union-attr]
    assert await executor.leases.expired() == []
