"""A thread's lifetime through the real API on real processes (API, io worker, sweeper): a
thread whose TTL passed, and a deleted thread, leave nothing in any store: no Redis key or
member (SCAN of the deployment's prefix), no SQLite row. The same store by store, through
direct calls: tests/unit/test_thread_lifetime.py."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from tests.support import services
from tests.support.services import key_kinds, keyspace
from tests.support.stack import Stack, final_answer, production_env

QUESTION = {"messages": [{"role": "user", "content": "two calls"}]}
TTL_SECONDS = 3


@pytest.fixture
def fresh_deployment(tmp_path: Path) -> Iterator[tuple[str, str]]:
    services.check_redis()
    vhost, prefix = services.new_vhost(), f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    try:
        yield vhost, prefix
    finally:
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)


async def _a_threads_worth(stack: Stack) -> tuple[str, list[str]]:
    """A thread with two background calls, its run streamed resumably (so its events are
    kept), and a copy of it; the ids of both threads once they are done."""
    client = get_client(url=stack.base_url, api_key=None)
    thread_id = (await client.threads.create())["thread_id"]
    parts = [
        part
        async for part in client.runs.stream(
            thread_id, "agent", input=QUESTION, stream_resumable=True
        )
    ]
    assert parts[-1].event == "end"
    assert final_answer(stack.wait_done(thread_id)).startswith("both done")
    copy = (await client.threads.copy(thread_id))["thread_id"]
    return thread_id, [thread_id, copy]


async def test_a_thread_expires_whole_from_every_store(
    tmp_path: Path, fresh_deployment: tuple[str, str]
) -> None:
    vhost, prefix = fresh_deployment
    # The setting's older name, which once reached only the checkpoints.
    env = production_env(
        tmp_path, vhost, prefix, GRAPHRELAY_CHECKPOINT_TTL_SECONDS=str(TTL_SECONDS),
        GRAPHRELAY_SWEEPER_PERIOD_SECONDS="0.5",
    )  # fmt: skip
    stack = Stack(env, tmp_path)
    try:
        stack.start("api", "io", "sweeper")
        _, threads = await _a_threads_worth(stack)
        written = keyspace(prefix)
        assert {
            "cp",
            "task",
            "thread-tasks",
            "thread",
            "thread-status",
            "run",
            "run-of",
            "thread-of",
            "kept-events",
        } <= key_kinds(written, prefix)
        assert all(t in written[f"{prefix}:thread-of:all-threads"] for t in threads)

        stack.wait_for("every key to expire", lambda: not keyspace(prefix), timeout=60)
    finally:
        stack.stop()


async def test_a_deleted_thread_leaves_no_key_or_member_in_redis(
    production_stack: Stack,
) -> None:
    stack = production_stack
    prefix = stack.settings.key_prefix
    thread_id, threads = await _a_threads_worth(stack)
    [copy] = [t for t in threads if t != thread_id]
    client = stack.sdk()
    run_ids = [run["run_id"] for run in client.runs.list(thread_id)]
    task_ids = [record.task_id for record in stack.records(thread_id)]
    assert run_ids and task_ids and _of(keyspace(prefix), [thread_id, *run_ids, *task_ids])

    client.threads.delete(thread_id)
    client.threads.delete(copy)

    assert keyspace(prefix) == {}


def _of(found: dict[str, Any], ids: list[str]) -> list[str]:
    """The keys, or members of keys, that name one of `ids`."""

    def names(key: str, members: Any) -> bool:
        return any(i in key or (isinstance(members, list) and i in members) for i in ids)

    return [key for key, members in found.items() if names(key, members)]


async def test_a_deleted_thread_leaves_no_row_in_the_embedded_stores(
    embedded_stack: Stack,
) -> None:
    stack = embedded_stack
    thread_id, _ = await _a_threads_worth(stack)
    run_ids = [run["run_id"] for run in stack.sdk().runs.list(thread_id)]
    assert _rows(stack.settings.data_dir, thread_id, run_ids)

    stack.sdk().threads.delete(thread_id)

    assert _rows(stack.settings.data_dir, thread_id, run_ids) == {}


def _rows(data_dir: Path, thread_id: str, run_ids: list[str]) -> dict[str, int]:
    """How many rows of each embedded store belong to the thread or its runs."""
    marks = ", ".join("?" * len(run_ids))
    queries = {
        "ledger": ("ledger.sqlite", "SELECT count(*) FROM tasks WHERE thread_id = ?", [thread_id]),
        "documents": ("runs.sqlite", f"SELECT count(*) FROM docs WHERE id = ? OR parent = ?"
                      f" OR id IN ({marks})", [thread_id, thread_id, *run_ids]),
        "leases": ("runs.sqlite", f"SELECT count(*) FROM leases WHERE run_id IN ({marks})",
                   run_ids),
        "checkpoints": ("checkpoints.sqlite", "SELECT count(*) FROM checkpoints"
                        " WHERE thread_id = ?", [thread_id]),
        "writes": ("checkpoints.sqlite", "SELECT count(*) FROM writes WHERE thread_id = ?",
                   [thread_id]),
    }  # fmt: skip
    found = {}
    for name, (file, query, params) in queries.items():
        with contextlib.closing(sqlite3.connect(data_dir / file)) as db:
            [(count,)] = db.execute(query, params).fetchall()
        if count:
            found[name] = count
    return found
