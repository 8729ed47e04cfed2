"""Where the API keeps thread and run records: SQLite (embedded) or Redis (production)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Protocol, TypeVar

import redis
from pydantic import BaseModel

from graphrelay.api.records import RunRecord, ThreadRecord
from graphrelay.redis_clients import sync_client
from graphrelay.sqlite import ThreadLocalSqlite

Doc = TypeVar("Doc", bound=BaseModel)
ALL_THREADS = "all-threads"


class DocumentStore(Protocol):
    """JSON documents by kind and id, each optionally filed under a parent id."""

    def put(self, kind: str, doc_id: str, doc: str, parent: str = "") -> None:
        """Insert or replace a document."""
        ...

    def get(self, kind: str, doc_id: str) -> str | None:
        """A document, or None."""
        ...

    def children(self, kind: str, parent: str) -> list[str]:
        """Documents filed under `parent`, oldest first."""
        ...

    def delete(self, kind: str, doc_id: str, parent: str = "") -> None:
        """Remove a document (and its filing under `parent`)."""
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

    def put(self, kind: str, doc_id: str, doc: str, parent: str = "") -> None:
        """Insert or replace a document, keeping its first insertion order."""
        self._db().execute(
            "INSERT INTO docs (kind, id, parent, seq, doc) VALUES (?, ?, ?,"
            " (SELECT COALESCE(MAX(seq), 0) + 1 FROM docs), ?)"
            " ON CONFLICT (kind, id) DO UPDATE SET doc = excluded.doc",
            (kind, doc_id, parent, doc),
        )

    def get(self, kind: str, doc_id: str) -> str | None:
        """A document, or None."""
        row = (
            self._db()
            .execute("SELECT doc FROM docs WHERE kind = ? AND id = ?", (kind, doc_id))
            .fetchone()
        )
        return str(row[0]) if row else None

    def children(self, kind: str, parent: str) -> list[str]:
        """Documents filed under `parent`, oldest first."""
        rows = (
            self._db()
            .execute(
                "SELECT doc FROM docs WHERE kind = ? AND parent = ? ORDER BY seq", (kind, parent)
            )
            .fetchall()
        )
        return [str(row[0]) for row in rows]

    def delete(self, kind: str, doc_id: str, parent: str = "") -> None:
        """Remove a document."""
        self._db().execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, doc_id))


class RedisDocuments:
    """DocumentStore on plain Redis: a string per document, a sorted set per parent."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis: redis.Redis = sync_client(url, decode_responses=True)
        self._prefix = prefix

    def put(self, kind: str, doc_id: str, doc: str, parent: str = "") -> None:
        """Insert or replace a document, keeping its first insertion order."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{self._prefix}:{kind}:{doc_id}", doc)
            if parent:
                pipe.zadd(f"{self._prefix}:{kind}-of:{parent}", {doc_id: time.time()}, nx=True)
            pipe.execute()

    def get(self, kind: str, doc_id: str) -> str | None:
        """A document, or None."""
        value = self._redis.get(f"{self._prefix}:{kind}:{doc_id}")
        return str(value) if value is not None else None

    def children(self, kind: str, parent: str) -> list[str]:
        """Documents filed under `parent`, oldest first."""
        ids: list[str] = self._redis.zrange(  # type: ignore[assignment]
            f"{self._prefix}:{kind}-of:{parent}", 0, -1
        )
        if not ids:
            return []
        docs = self._redis.mget([f"{self._prefix}:{kind}:{doc_id}" for doc_id in ids])
        return [str(doc) for doc in docs if doc is not None]

    def delete(self, kind: str, doc_id: str, parent: str = "") -> None:
        """Remove a document and its filing under `parent`."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{self._prefix}:{kind}:{doc_id}")
            if parent:
                pipe.zrem(f"{self._prefix}:{kind}-of:{parent}", doc_id)
            pipe.execute()


class RunStore:
    """Typed access to thread and run records."""

    def __init__(self, documents: DocumentStore) -> None:
        self._docs = documents

    def put_thread(self, thread: ThreadRecord) -> None:
        """Insert or replace a thread."""
        self._docs.put("thread", thread.thread_id, thread.model_dump_json(), parent=ALL_THREADS)

    def threads(self) -> list[ThreadRecord]:
        """Every thread, oldest first."""
        return [
            ThreadRecord.model_validate_json(d) for d in self._docs.children("thread", ALL_THREADS)
        ]

    def delete_thread(self, thread_id: str) -> None:
        """Remove a thread and its runs."""
        for run in self.runs_of(thread_id):
            self._docs.delete("run", run.run_id, parent=thread_id)
        self._docs.delete("thread", thread_id, parent=ALL_THREADS)

    def delete_run(self, run: RunRecord) -> None:
        """Remove one run."""
        self._docs.delete("run", run.run_id, parent=run.thread_id)

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        """A thread, or None."""
        return _parse(ThreadRecord, self._docs.get("thread", thread_id))

    def put_run(self, run: RunRecord) -> None:
        """Insert or replace a run."""
        self._docs.put("run", run.run_id, run.model_dump_json(), parent=run.thread_id)

    def get_run(self, run_id: str) -> RunRecord | None:
        """A run, or None."""
        return _parse(RunRecord, self._docs.get("run", run_id))

    def runs_of(self, thread_id: str) -> list[RunRecord]:
        """A thread's runs, oldest first."""
        return [RunRecord.model_validate_json(doc) for doc in self._docs.children("run", thread_id)]


def _parse(model: type[Doc], doc: str | None) -> Doc | None:
    return model.model_validate_json(doc) if doc is not None else None


def open_run_store(ledger_url: str, prefix: str, data_dir: Path) -> RunStore:
    """Runs live beside the ledger: in Redis when it is Redis, else in SQLite."""
    if ledger_url.startswith(("redis://", "rediss://")):
        return RunStore(RedisDocuments(ledger_url, prefix))
    return RunStore(SqliteDocuments(data_dir / "runs.sqlite"))
