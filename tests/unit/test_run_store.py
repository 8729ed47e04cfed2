"""RunStore's index of active runs on SQLite and real Redis: a run is active from its start
until a record ends it, and reading a thread's active runs ignores its ended history."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from graphrelay.backends.redis.documents import RedisDocuments
from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.sqlite.documents import SqliteDocuments
from graphrelay.server.ports import DocumentStore, Entry
from graphrelay.server.records import RunRecord, RunStatus, ThreadRecord
from graphrelay.server.store import ACTIVE_RUN, RunStore
from tests.support import services

ENDED: tuple[RunStatus, ...] = ("success", "error", "interrupted", "timeout")


class Reads:
    """A DocumentStore that counts the documents read through it."""

    def __init__(self, documents: DocumentStore) -> None:
        self.documents, self.count = documents, 0

    async def put(
        self,
        *entries: Entry,
        drop: Sequence[tuple[str, str, str]] = (),
        touch: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        await self.documents.put(*entries, drop=drop, touch=touch)

    async def get(self, *keys: tuple[str, str]) -> list[str | None]:
        self.count += len(keys)
        return await self.documents.get(*keys)

    async def children(self, kind: str, parent: str) -> list[str]:
        found = await self.documents.children(kind, parent)
        self.count += len(found)
        return found

    async def filed(self, kind: str, parent: str) -> list[str]:
        return await self.documents.filed(kind, parent)

    async def delete(self, *entries: tuple[str, str, str]) -> None:
        await self.documents.delete(*entries)

    async def forget_expired(self) -> int:
        return await self.documents.forget_expired()


@pytest.fixture(params=["sqlite", "redis"])
def documents(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Reads]:
    if request.param == "sqlite":
        yield Reads(SqliteDocuments(tmp_path / "runs.sqlite"))
        return
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    yield Reads(RedisDocuments(services.REDIS_URL, RedisKeys(prefix)))
    services.clear_prefix(prefix)


@pytest.fixture
def store(documents: Reads) -> RunStore:
    return RunStore(documents)


async def start(store: RunStore, thread: ThreadRecord) -> RunRecord:
    run = RunRecord(thread_id=thread.thread_id, assistant_id="agent")
    await store.start_run(thread, run)
    return run


async def end(store: RunStore, run: RunRecord, status: RunStatus = "success") -> None:
    run.status = status
    await store.put_run(run, "idle")


def ids(runs: list[RunRecord]) -> list[str]:
    return [run.run_id for run in runs]


async def test_a_run_is_active_until_it_ends(store: RunStore) -> None:
    thread = ThreadRecord()
    run = await start(store, thread)
    assert ids(await store.active_runs(thread.thread_id)) == [run.run_id]

    run.status = "running"
    await store.put_run(run, "busy")
    assert ids(await store.active_runs(thread.thread_id)) == [run.run_id]

    await end(store, run)
    assert await store.active_runs(thread.thread_id) == []
    assert ids(await store.runs_of(thread.thread_id)) == [run.run_id]  # the record stays


@pytest.mark.parametrize("status", ENDED)
async def test_every_ended_status_ends_it(store: RunStore, status: RunStatus) -> None:
    thread = ThreadRecord()
    await end(store, await start(store, thread), status)
    assert await store.active_runs(thread.thread_id) == []


async def test_deleting_the_run_or_its_thread_clears_it(store: RunStore) -> None:
    thread = ThreadRecord()
    deleted, kept = await start(store, thread), await start(store, thread)

    await store.delete_run(deleted)
    assert ids(await store.active_runs(thread.thread_id)) == [kept.run_id]

    await store.delete_thread(thread.thread_id)
    assert await store.active_runs(thread.thread_id) == []
    assert await store.runs_of(thread.thread_id) == []
    assert await store.get_thread(thread.thread_id) is None


async def test_active_runs_come_oldest_first(store: RunStore) -> None:
    thread, other = ThreadRecord(), ThreadRecord()
    runs = [await start(store, thread) for _ in range(3)]
    await start(store, other)

    runs[0].status = "running"
    await store.put_run(runs[0])  # a later write keeps the run's place
    assert ids(await store.active_runs(thread.thread_id)) == ids(runs)


async def test_a_long_history_is_not_read(store: RunStore, documents: Reads) -> None:
    thread = ThreadRecord()
    for _ in range(200):
        await end(store, await start(store, thread))
    active = await start(store, thread)

    documents.count = 0
    assert ids(await store.active_runs(thread.thread_id)) == [active.run_id]
    assert documents.count == 1  # the active run's record, none of the ended ones
    assert len(await store.runs_of(thread.thread_id)) == 201


async def test_a_stale_marker_is_ignored_and_dropped(store: RunStore, documents: Reads) -> None:
    thread = ThreadRecord()
    run = await start(store, thread)
    # A record ended without its marker removed, as a replica older than the index writes it.
    run.status = "success"
    await documents.put(Entry("run", run.run_id, run.model_dump_json(), thread.thread_id))
    assert await documents.filed(ACTIVE_RUN, thread.thread_id) == [run.run_id]

    assert await store.active_runs(thread.thread_id) == []
    assert await documents.filed(ACTIVE_RUN, thread.thread_id) == []
