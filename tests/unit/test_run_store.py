"""RunStore on SQLite and real Redis: the index of active runs (a run is active from its start
until a record ends it, and reading a thread's active runs ignores its ended history), and the
atomic claim that starts a run (checking the thread's state and writing the run is one step:
of claims racing each other, through separate connections, exactly one holds the thread)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from graphrelay.backends.redis.documents import RedisDocuments
from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.sqlite.documents import SqliteDocuments
from graphrelay.server.ports import DocumentStore, Entry, Guard
from graphrelay.server.records import RunRecord, RunStatus, ThreadRecord, ThreadStatus
from graphrelay.server.store import ACTIVE_RUN, IfInterrupted, RunStore
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

    async def put_if(
        self,
        guard: Guard,
        *entries: Entry,
        drop: Sequence[tuple[str, str, str]] = (),
        touch: Sequence[tuple[str, str, str]] = (),
    ) -> bool:
        return await self.documents.put_if(guard, *entries, drop=drop, touch=touch)

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
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], DocumentStore]]:
    """Opens documents on one backend's store, each time on connections of its own."""
    if request.param == "sqlite":
        yield lambda: SqliteDocuments(tmp_path / "runs.sqlite")
        return
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    yield lambda: RedisDocuments(services.REDIS_URL, RedisKeys(prefix))
    services.clear_prefix(prefix)


@pytest.fixture
def documents(opener: Callable[[], DocumentStore]) -> Reads:
    return Reads(opener())


@pytest.fixture
def store(documents: Reads) -> RunStore:
    return RunStore(documents)


async def start(store: RunStore, thread: ThreadRecord) -> RunRecord:
    """A run claimed on `thread` (created if need be), queued behind any active one."""
    if await store.get_thread(thread.thread_id) is None:
        await store.put_thread(thread)
    run = RunRecord(thread_id=thread.thread_id, assistant_id="agent")
    assert (await store.claim(run, if_busy="queue")).claimed
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


# -- claims ------------------------------------------------------------------------------

RACERS = 20  # claims sent at once
CONNECTIONS = 4  # stores they go through, each on connections of its own


async def a_thread(store: RunStore, **fields: Any) -> ThreadRecord:
    thread = ThreadRecord(**fields)
    await store.put_thread(thread)
    return thread


def new_run(thread: ThreadRecord) -> RunRecord:
    return RunRecord(thread_id=thread.thread_id, assistant_id="agent")


@pytest.mark.parametrize(("status", "mode"), [("idle", "refuse"), ("interrupted", "allow")])
async def test_of_claims_racing_each_other_one_holds_the_thread(
    opener: Callable[[], DocumentStore], status: ThreadStatus, mode: IfInterrupted
) -> None:
    stores = [RunStore(opener()) for _ in range(CONNECTIONS)]
    thread = await a_thread(stores[0], status=status, graph_id="agent")
    runs = [new_run(thread) for _ in range(RACERS)]

    claims = await asyncio.gather(
        *(stores[n % CONNECTIONS].claim(run, if_interrupted=mode) for n, run in enumerate(runs))
    )

    winners = [run for run, claim in zip(runs, claims, strict=True) if claim.claimed]
    assert len(winners) == 1
    assert {claim.refused for claim in claims if not claim.claimed} == {"busy"}
    assert ids(await stores[1].active_runs(thread.thread_id)) == ids(winners)
    assert ids(await stores[2].runs_of(thread.thread_id)) == ids(winners)  # the others: nothing
    assert (await stores[3].get_thread(thread.thread_id)).status == "busy"  # type: ignore[union-attr]


async def test_queued_claims_all_hold_the_thread(opener: Callable[[], DocumentStore]) -> None:
    stores = [RunStore(opener()) for _ in range(CONNECTIONS)]
    thread = await a_thread(stores[0], graph_id="agent")
    runs = [new_run(thread) for _ in range(RACERS)]

    claims = await asyncio.gather(*(stores[n % CONNECTIONS].claim(run, if_busy="queue")
                                    for n, run in enumerate(runs)))  # fmt: skip

    assert all(claim.claimed for claim in claims)
    assert sorted(ids(await stores[0].active_runs(thread.thread_id))) == sorted(ids(runs))


async def test_a_refused_claim_says_why_and_writes_nothing(store: RunStore) -> None:
    waiting = await a_thread(store, status="interrupted", graph_id="agent")
    other = await a_thread(store, graph_id="researcher")
    busy = await a_thread(store, graph_id="agent")
    holder = await start(store, busy)
    missing = ThreadRecord()

    refused = {
        "interrupted": await store.claim(new_run(waiting)),
        "other-assistant": await store.claim(new_run(other)),
        "busy": await store.claim(new_run(busy)),
        "gone": await store.claim(new_run(missing)),
    }

    assert {reason: claim.refused for reason, claim in refused.items()} == {
        reason: reason for reason in refused
    }
    assert ids(list(refused["busy"].active)) == [holder.run_id]
    for thread in (waiting, other):
        assert await store.runs_of(thread.thread_id) == []
    assert ids(await store.runs_of(busy.thread_id)) == [holder.run_id]
    assert await store.get_thread(missing.thread_id) is None  # not brought back


async def test_the_first_claim_gives_the_thread_its_graph(store: RunStore) -> None:
    thread = await a_thread(store, metadata={"owner": "ada"})

    assert (await store.claim(new_run(thread))).claimed

    claimed = await store.get_thread(thread.thread_id)
    assert claimed is not None
    assert (claimed.graph_id, claimed.status, claimed.metadata) == (
        "agent",
        "busy",
        {"owner": "ada"},
    )


async def test_a_stale_marker_does_not_hold_the_thread(store: RunStore, documents: Reads) -> None:
    thread = await a_thread(store, graph_id="agent")
    ended = await start(store, thread)
    ended.status = "success"  # ended without its marker removed, as an older replica wrote it
    await documents.put(Entry("run", ended.run_id, ended.model_dump_json(), thread.thread_id))

    run = new_run(thread)
    assert (await store.claim(run)).claimed
    assert await documents.filed(ACTIVE_RUN, thread.thread_id) == [run.run_id]


async def test_a_thread_held_by_a_run_is_not_settled(store: RunStore) -> None:
    thread = await a_thread(store, graph_id="agent")
    run = await start(store, thread)

    assert not await store.settle_thread(thread.thread_id, "idle")
    assert (await store.get_thread(thread.thread_id)).status == "busy"  # type: ignore[union-attr]

    await end(store, run, "success")
    assert await store.settle_thread(thread.thread_id, "interrupted")
    assert (await store.get_thread(thread.thread_id)).status == "interrupted"  # type: ignore[union-attr]
    assert not await store.settle_thread(ThreadRecord().thread_id, "idle")  # no such thread


async def test_a_claim_racing_a_settle_leaves_a_held_thread_busy(
    opener: Callable[[], DocumentStore],
) -> None:
    claimer, settler = RunStore(opener()), RunStore(opener())
    for _ in range(RACERS):
        thread = await a_thread(claimer, graph_id="agent")
        run = new_run(thread)

        claim, _ = await asyncio.gather(
            claimer.claim(run), settler.settle_thread(thread.thread_id, "interrupted")
        )

        status = (await claimer.get_thread(thread.thread_id)).status  # type: ignore[union-attr]
        assert (claim.claimed, status) in ((True, "busy"), (False, "interrupted"))
        if not claim.claimed:  # settled first: the thread waits on interrupts now
            assert claim.refused == "interrupted"


async def test_a_dropped_claim_leaves_no_run(store: RunStore) -> None:
    thread = await a_thread(store, graph_id="agent")
    run = await start(store, thread)

    await store.drop_claim(run, "interrupted")

    assert await store.runs_of(thread.thread_id) == []
    assert await store.active_runs(thread.thread_id) == []
    assert (await store.get_thread(thread.thread_id)).status == "interrupted"  # type: ignore[union-attr]


async def test_a_conditional_write_checks_documents_and_filings(documents: Reads) -> None:
    await documents.put(Entry("run", "a", "{}", "t"), Entry("run", "b", "{}", "t"))
    as_read = Guard(docs=(("run", "a", "{}"), ("run", "c", None)),
                    filings=(("run", "t", frozenset({"b", "a"})),))  # fmt: skip
    changed_doc = Guard(docs=(("run", "a", '{"x": 1}'),))
    changed_filing = Guard(filings=(("run", "t", frozenset({"a"})),))
    appeared = Guard(docs=(("run", "b", None),))

    for guard in (changed_doc, changed_filing, appeared):
        assert not await documents.put_if(guard, Entry("run", "c", "{}", "t"))
    assert await documents.filed("run", "t") == ["a", "b"]  # nothing written

    assert await documents.put_if(as_read, Entry("run", "c", "{}", "t"), drop=[("run", "a", "t")])
    assert await documents.filed("run", "t") == ["b", "c"]
    assert await documents.get(("run", "a")) == [None]


async def test_a_conditional_write_sent_again_counts_as_made(documents: Reads) -> None:
    """The same write, resent after its reply was lost, finds its own first document."""
    guard = Guard(docs=(("run", "r", None),))
    write = Entry("run", "r", '{"v": 1}', "t")

    assert await documents.put_if(guard, write)
    assert await documents.put_if(guard, write)
    assert not await documents.put_if(guard, Entry("run", "r", '{"v": 2}', "t"))
    assert await documents.get(("run", "r")) == ['{"v": 1}']
