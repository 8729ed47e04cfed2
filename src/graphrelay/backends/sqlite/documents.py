"""The run store's documents in one SQLite table: the embedded profile (no TTL: documents stay
until they are deleted). A conditional write reads and writes inside one BEGIN IMMEDIATE
transaction, so processes sharing the file serialise on its write lock."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from graphrelay.backends.sqlite.connection import ThreadLocalSqlite, transaction
from graphrelay.server.ports import Entry, Guard


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

    async def put(
        self,
        *entries: Entry,
        drop: Sequence[tuple[str, str, str]] = (),
        touch: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        """Insert or replace documents and remove those in `drop`, in one transaction,
        keeping first insertion order (`touch` changes nothing: nothing expires here)."""
        if entries or drop:
            await asyncio.to_thread(self._put, entries, drop)

    def _put(self, entries: Sequence[Entry], drop: Sequence[tuple[str, str, str]]) -> None:
        db = self._db()
        with transaction(db):
            _write(db, entries, drop)

    async def put_if(
        self,
        guard: Guard,
        *entries: Entry,
        drop: Sequence[tuple[str, str, str]] = (),
        touch: Sequence[tuple[str, str, str]] = (),
    ) -> bool:
        """`put` if every document and filing in `guard` is still as given, in one
        transaction that holds the file's write lock from its first read; True if written
        (`touch` changes nothing: nothing expires here)."""
        return await asyncio.to_thread(self._put_if, guard, entries, drop)

    def _put_if(
        self, guard: Guard, entries: Sequence[Entry], drop: Sequence[tuple[str, str, str]]
    ) -> bool:
        db = self._db()
        with transaction(db):
            if entries and _doc(db, entries[0].kind, entries[0].doc_id) == entries[0].doc:
                return True  # written already: this very write, sent again
            if not _unchanged(db, guard):
                return False
            _write(db, entries, drop)
        return True

    async def get(self, *keys: tuple[str, str]) -> list[str | None]:
        """The documents at (kind, id) keys, None where missing."""
        return await asyncio.to_thread(self._get, keys)

    def _get(self, keys: Sequence[tuple[str, str]]) -> list[str | None]:
        db = self._db()
        return [_doc(db, kind, doc_id) for kind, doc_id in keys]

    async def children(self, kind: str, parent: str) -> list[str]:
        """Documents filed under `parent`, oldest first."""
        return await asyncio.to_thread(self._under, "doc", kind, parent)

    async def filed(self, kind: str, parent: str) -> list[str]:
        """Ids of the documents filed under `parent`, oldest first."""
        return await asyncio.to_thread(self._under, "id", kind, parent)

    def _under(self, column: Literal["doc", "id"], kind: str, parent: str) -> list[str]:
        return _under(self._db(), column, kind, parent)

    async def delete(self, *entries: tuple[str, str, str]) -> None:
        """Remove documents."""
        await asyncio.to_thread(self._delete, entries)

    def _delete(self, entries: Sequence[tuple[str, str, str]]) -> None:
        db = self._db()
        with transaction(db):
            _remove(db, entries)

    async def forget_expired(self) -> int:
        """Nothing expires here."""
        return 0


def _doc(db: sqlite3.Connection, kind: str, doc_id: str) -> str | None:
    row = db.execute("SELECT doc FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
    return str(row[0]) if row else None


def _under(
    db: sqlite3.Connection, column: Literal["doc", "id"], kind: str, parent: str
) -> list[str]:
    query = f"SELECT {column} FROM docs WHERE kind = ? AND parent = ? ORDER BY seq"
    return [str(row[0]) for row in db.execute(query, (kind, parent)).fetchall()]


def _unchanged(db: sqlite3.Connection, guard: Guard) -> bool:
    """Whether every document and filing in `guard` is as it says."""
    if any(_doc(db, kind, doc_id) != doc for kind, doc_id, doc in guard.docs):
        return False
    return all(set(_under(db, "id", kind, parent)) == ids for kind, parent, ids in guard.filings)


def _write(
    db: sqlite3.Connection, entries: Sequence[Entry], drop: Sequence[tuple[str, str, str]]
) -> None:
    for e in entries:
        db.execute(
            "INSERT INTO docs (kind, id, parent, seq, doc) VALUES (?, ?, ?,"
            " (SELECT COALESCE(MAX(seq), 0) + 1 FROM docs), ?)"
            " ON CONFLICT (kind, id) DO UPDATE SET doc = excluded.doc",
            (e.kind, e.doc_id, e.parent, e.doc),
        )
    _remove(db, drop)


def _remove(db: sqlite3.Connection, entries: Sequence[tuple[str, str, str]]) -> None:
    for kind, doc_id, _parent in entries:
        db.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, doc_id))
