"""The run store's documents in one SQLite table: the embedded profile (no TTL: documents stay
until they are deleted)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from graphrelay.backends.sqlite.connection import ThreadLocalSqlite, transaction
from graphrelay.server.ports import Entry


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
        with transaction(db):
            _remove(db, entries)

    async def forget_expired(self) -> int:
        """Nothing expires here."""
        return 0


def _remove(db: sqlite3.Connection, entries: Sequence[tuple[str, str, str]]) -> None:
    for kind, doc_id, _parent in entries:
        db.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, doc_id))
