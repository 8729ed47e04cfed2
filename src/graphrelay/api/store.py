"""Where the API keeps thread and run records: SQLite (embedded) or Redis (production).

Every call is a coroutine. Redis is reached through `AsyncWire` (pipelined on one connection
per event loop), so a request's records cost round trips on the loop, not a hop through a
thread pool; several documents written together go in one MULTI/EXEC. SQLite, local and fast,
runs in the default thread pool.

A thread's status is a document of its own (kind `thread-status`): the executor changes it
several times a run, and writing it blindly needs no read and cannot undo a concurrent
metadata update of the thread document.

A thread's runs are never forgotten (every automatic resume is a run of its own), so its
active runs, read on every resume and by the multitask strategies, have an index of their own:
a run that has not ended is also filed as an `active-run` marker under its thread, written
with the run's record and removed with the record that ends it, in the same atomic write.
Reading them costs the thread's active runs, not its history.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from pydantic import BaseModel

from graphrelay.api.records import RunRecord, ThreadRecord, ThreadStatus, now
from graphrelay.async_wire import AsyncWire
from graphrelay.redis_clients import text
from graphrelay.sqlite import ThreadLocalSqlite

Doc = TypeVar("Doc", bound=BaseModel)
ALL_THREADS = "all-threads"
ACTIVE = ("pending", "running")  # run statuses of a run not yet ended
ACTIVE_RUN = "active-run"  # kind of the marker filed under a thread while a run is ACTIVE


@dataclass(frozen=True)
class Entry:
    """One document to write: its kind, id, JSON text and the parent it is filed under."""

    kind: str
    doc_id: str
    doc: str
    parent: str = ""


class DocumentStore(Protocol):
    """JSON documents by kind and id, each optionally filed under a parent id."""

    async def put(self, *entries: Entry, drop: Sequence[tuple[str, str, str]] = ()) -> None:
        """Insert or replace documents and remove the (kind, id, parent) ones in `drop`, all or
        none."""
        ...

    async def get(self, *keys: tuple[str, str]) -> list[str | None]:
        """The documents at (kind, id) keys, None where missing."""
        ...

    async def children(self, kind: str, parent: str) -> list[str]:
        """Documents filed under `parent`, oldest first."""
        ...

    async def filed(self, kind: str, parent: str) -> list[str]:
        """Ids of the documents filed under `parent`, oldest first."""
        ...

    async def delete(self, *entries: tuple[str, str, str]) -> None:
        """Remove (kind, id, parent) documents and their filing."""
        ...


class SqliteDocuments:
    """DocumentStore in one SQLite table (one connection per OS thread)."""

    def __init__(self, path: Path) -> None:
        self._sqlite = ThreadLocalSqlite(path)
        self._db().executescript(
            "CREATE TABLE IF NOT EXISTS docs (kind TEXT, id TEXT, parent TEXT, seq INTEGER,"
            " doc TEXT, PRIMARY KEY (kind, id));"
            "CREATE INDEX IF NOT EXISTS docs_by_parent ON docs (kind, parent, seq);"
        )

    def _db(self) -> sqlite3.Connection:
        return self._sqlite.connection()

    async def put(self, *entries: Entry, drop: Sequence[tuple[str, str, str]] = ()) -> None:
        """Insert or replace documents and remove those in `drop`, in one transaction,
        keeping first insertion order."""
        await asyncio.to_thread(self._put, entries, drop)

    def _put(self, entries: Sequence[Entry], drop: Sequence[tuple[str, str, str]]) -> None:
        db = self._db()
        with _transaction(db):
            for e in entries:
                db.execute(
                    "INSERT INTO docs (kind, id, parent, seq, doc) VALUES (?, ?, ?,"
                    " (SELECT COALESCE(MAX(seq), 0) + 1 FROM docs), ?)"
                    " ON CONFLICT (kind, id) DO UPDATE SET doc = excluded.doc",
                    (e.kind, e.doc_id, e.parent, e.doc),
                )
            _remove(db, drop)

    async def get(self, *keys: tuple[str, str]) -> list[str | None]:
        """The documents at (kind, id) keys, None where missing."""
        return await asyncio.to_thread(self._get, keys)

    def _get(self, keys: Sequence[tuple[str, str]]) -> list[str | None]:
        found: list[str | None] = []
        for kind, doc_id in keys:
            row = (
                self._db()
                .execute("SELECT doc FROM docs WHERE kind = ? AND id = ?", (kind, doc_id))
                .fetchone()
            )
            found.append(str(row[0]) if row else None)
        return found

    async def children(self, kind: str, parent: str) -> list[str]:
        """Documents filed under `parent`, oldest first."""
        return await asyncio.to_thread(self._under, "doc", kind, parent)

    async def filed(self, kind: str, parent: str) -> list[str]:
        """Ids of the documents filed under `parent`, oldest first."""
        return await asyncio.to_thread(self._under, "id", kind, parent)

    def _under(self, column: Literal["doc", "id"], kind: str, parent: str) -> list[str]:
        query = f"SELECT {column} FROM docs WHERE kind = ? AND parent = ? ORDER BY seq"
        rows = self._db().execute(query, (kind, parent)).fetchall()
        return [str(row[0]) for row in rows]

    async def delete(self, *entries: tuple[str, str, str]) -> None:
        """Remove documents."""
        await asyncio.to_thread(self._delete, entries)

    def _delete(self, entries: Sequence[tuple[str, str, str]]) -> None:
        db = self._db()
        with _transaction(db):
            _remove(db, entries)


def _remove(db: sqlite3.Connection, entries: Sequence[tuple[str, str, str]]) -> None:
    for kind, doc_id, _parent in entries:
        db.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, doc_id))


class _transaction:
    """BEGIN ... COMMIT (or ROLLBACK) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if kind else "COMMIT")


class RedisDocuments:
    """DocumentStore on plain Redis: a string per document, a sorted set per parent."""

    def __init__(self, url: str, prefix: str) -> None:
        self._wire = AsyncWire(url)
        self._prefix = prefix

    def _key(self, kind: str, doc_id: str) -> str:
        return f"{self._prefix}:{kind}:{doc_id}"

    def _filing(self, kind: str, parent: str) -> str:
        return f"{self._prefix}:{kind}-of:{parent}"

    async def put(self, *entries: Entry, drop: Sequence[tuple[str, str, str]] = ()) -> None:
        """Insert or replace documents and remove those in `drop`, in one MULTI/EXEC, keeping
        first insertion order."""
        commands: list[tuple[str | float, ...]] = []
        for e in entries:
            commands.append(("SET", self._key(e.kind, e.doc_id), e.doc))
            if e.parent:
                commands.append(("ZADD", self._filing(e.kind, e.parent), "NX", time.time(),
                                 e.doc_id))  # fmt: skip
        commands += self._removal(drop)
        await self._wire.execute(commands, atomic=len(entries) + len(drop) > 1)

    async def get(self, *keys: tuple[str, str]) -> list[str | None]:
        """The documents at (kind, id) keys, None where missing."""
        docs = await self._wire.call("MGET", *[self._key(kind, i) for kind, i in keys])
        return [text(doc) if doc is not None else None for doc in docs]

    async def children(self, kind: str, parent: str) -> list[str]:
        """Documents filed under `parent`, oldest first."""
        ids = await self._wire.call("ZRANGE", self._filing(kind, parent), 0, -1)
        if not ids:
            return []
        docs = await self._wire.call("MGET", *[self._key(kind, text(i)) for i in ids])
        return [text(doc) for doc in docs if doc is not None]

    async def filed(self, kind: str, parent: str) -> list[str]:
        """Ids of the documents filed under `parent`, oldest first."""
        return [text(i) for i in await self._wire.call("ZRANGE", self._filing(kind, parent), 0, -1)]

    async def delete(self, *entries: tuple[str, str, str]) -> None:
        """Remove documents and their filing, in one MULTI/EXEC."""
        await self._wire.execute(self._removal(entries), atomic=True)

    def _removal(self, entries: Sequence[tuple[str, str, str]]) -> list[tuple[str | float, ...]]:
        commands: list[tuple[str | float, ...]] = []
        for kind, doc_id, parent in entries:
            commands.append(("DEL", self._key(kind, doc_id)))
            if parent:
                commands.append(("ZREM", self._filing(kind, parent), doc_id))
        return commands


class ThreadState(BaseModel):
    """The part of a thread the executor changes while it runs."""

    status: ThreadStatus
    updated_at: datetime


class RunStore:
    """Typed access to thread and run records."""

    def __init__(self, documents: DocumentStore) -> None:
        self._docs = documents

    async def put_thread(self, thread: ThreadRecord) -> None:
        """Insert or replace a thread."""
        await self._docs.put(*_thread_entries(thread))

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        """A thread, or None."""
        doc, state = await self._docs.get(("thread", thread_id), ("thread-status", thread_id))
        return _with_state(doc, state)

    async def set_thread_status(self, thread_id: str, status: ThreadStatus) -> None:
        """Change only the thread's status (no read, so no lost update)."""
        await self._docs.put(_status_entry(thread_id, status))

    async def threads(self) -> list[ThreadRecord]:
        """Every thread, oldest first."""
        docs = await self._docs.children("thread", ALL_THREADS)
        threads = [ThreadRecord.model_validate_json(doc) for doc in docs]
        if not threads:
            return []
        states = await self._docs.get(*(("thread-status", t.thread_id) for t in threads))
        for thread, state in zip(threads, states, strict=True):
            _apply_state(thread, state)
        return threads

    async def delete_thread(self, thread_id: str) -> None:
        """Remove a thread, its runs and their active-run markers."""
        runs, markers = await asyncio.gather(
            self._docs.filed("run", thread_id), self._docs.filed(ACTIVE_RUN, thread_id)
        )
        await self._docs.delete(
            *(("run", run_id, thread_id) for run_id in runs),
            *(_marker(run_id, thread_id) for run_id in markers),
            ("thread", thread_id, ALL_THREADS),
            ("thread-status", thread_id, ""),
        )

    async def start_run(self, thread: ThreadRecord, run: RunRecord) -> None:
        """Write a new run and its thread (now busy) together."""
        await self._put_run(run, *_thread_entries(thread))

    async def put_run(self, run: RunRecord, thread_status: ThreadStatus | None = None) -> None:
        """Insert or replace a run (and set its thread's status in the same write)."""
        if thread_status is None:
            await self._put_run(run)
        else:
            await self._put_run(run, _status_entry(run.thread_id, thread_status))

    async def _put_run(self, run: RunRecord, *others: Entry) -> None:
        """Write `others` and the run, with its active-run marker filed while the run is
        active and removed once it has ended, all in one write."""
        entries = [*others, _run_entry(run)]
        if run.status in ACTIVE:
            await self._docs.put(*entries, Entry(ACTIVE_RUN, run.run_id, "", run.thread_id))
        else:
            await self._docs.put(*entries, drop=[_marker(run.run_id, run.thread_id)])

    async def get_run(self, run_id: str) -> RunRecord | None:
        """A run, or None."""
        [doc] = await self._docs.get(("run", run_id))
        return RunRecord.model_validate_json(doc) if doc is not None else None

    async def delete_run(self, run: RunRecord) -> None:
        """Remove one run and its active-run marker."""
        await self._docs.delete(
            ("run", run.run_id, run.thread_id), _marker(run.run_id, run.thread_id)
        )

    async def runs_of(self, thread_id: str) -> list[RunRecord]:
        """A thread's runs, oldest first."""
        docs = await self._docs.children("run", thread_id)
        return [RunRecord.model_validate_json(doc) for doc in docs]

    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        """A thread's pending and running runs, oldest first, found by their markers."""
        run_ids = await self._docs.filed(ACTIVE_RUN, thread_id)
        if not run_ids:
            return []
        docs = await self._docs.get(*(("run", run_id) for run_id in run_ids))
        runs = [RunRecord.model_validate_json(doc) for doc in docs if doc is not None]
        active = [run for run in runs if run.status in ACTIVE]
        # The record decides: a marker left behind (say, by a replica that predates the
        # index ending the run) must not make an ended run look active.
        stale = set(run_ids) - {run.run_id for run in active}
        if stale:
            await self._docs.delete(*(_marker(run_id, thread_id) for run_id in stale))
        return active


def _thread_entries(thread: ThreadRecord) -> tuple[Entry, Entry]:
    doc = thread.model_dump_json(exclude={"status"})
    state = ThreadState(status=thread.status, updated_at=thread.updated_at).model_dump_json()
    return Entry("thread", thread.thread_id, doc, ALL_THREADS), Entry(
        "thread-status", thread.thread_id, state
    )


def _status_entry(thread_id: str, status: ThreadStatus) -> Entry:
    return Entry(
        "thread-status", thread_id, ThreadState(status=status, updated_at=now()).model_dump_json()
    )


def _run_entry(run: RunRecord) -> Entry:
    return Entry("run", run.run_id, run.model_dump_json(), run.thread_id)


def _marker(run_id: str, thread_id: str) -> tuple[str, str, str]:
    return ACTIVE_RUN, run_id, thread_id


def _with_state(doc: str | None, state: str | None) -> ThreadRecord | None:
    if doc is None:
        return None
    thread = ThreadRecord.model_validate_json(doc)
    _apply_state(thread, state)
    return thread


def _apply_state(thread: ThreadRecord, state: str | None) -> None:
    if state is not None:
        current = ThreadState.model_validate_json(state)
        thread.status, thread.updated_at = current.status, current.updated_at


def open_run_store(ledger_url: str, prefix: str, data_dir: Path) -> RunStore:
    """Runs live beside the ledger: in Redis when it is Redis, else in SQLite."""
    if ledger_url.startswith(("redis://", "rediss://")):
        return RunStore(RedisDocuments(ledger_url, prefix))
    return RunStore(SqliteDocuments(data_dir / "runs.sqlite"))
