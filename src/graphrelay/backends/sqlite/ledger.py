"""The ledger's store on a SQLite file: the embedded default, shared by the API and local
workers.

Each transition is one `BEGIN IMMEDIATE` transaction, so concurrent processes serialise on
the file's write lock and a transition reads and writes the same version of a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Collection
from pathlib import Path

from graphrelay.backends.sqlite.connection import ThreadLocalSqlite, transaction
from graphrelay.bridge.calls import (
    OPEN_STATUSES,
    SWEPT_STATUSES,
    CallRecord,
    CallStatus,
    Transition,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    status TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_thread ON tasks (thread_id);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status);
"""


class SqliteLedger:
    """`LedgerStore` on one SQLite file (WAL mode, one connection per OS thread); awaited
    methods run in the default thread pool."""

    def __init__(self, path: Path) -> None:
        self._sqlite = ThreadLocalSqlite(path)
        self._sqlite.connection().executescript(SCHEMA)

    def _transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self._sqlite.connection())

    @staticmethod
    def _read(db: sqlite3.Connection, task_id: str) -> CallRecord | None:
        row = db.execute("SELECT doc FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return CallRecord.model_validate_json(row[0]) if row else None

    @staticmethod
    def _write(db: sqlite3.Connection, record: CallRecord) -> None:
        record.updated_at = time.time()
        db.execute(
            "INSERT OR REPLACE INTO tasks (task_id, thread_id, status, doc) VALUES (?, ?, ?, ?)",
            (record.task_id, record.thread_id, record.status, record.model_dump_json()),
        )

    def update(self, task_id: str, change: Transition) -> CallRecord | None:
        """Apply `change` in one transaction; the changed record, or None if nothing changed."""
        with self._transaction() as db:
            record = self._read(db, task_id)
            if record is None or not change(record):
                return None
            self._write(db, record)
            return record

    def intend(self, record: CallRecord) -> CallRecord:
        """Store `record` as INTENDED unless its key exists; return the stored record."""
        with self._transaction() as db:
            stored = self._read(db, record.task_id)
            if stored is not None:
                return stored
            self._write(db, record)
            return record

    def get(self, task_id: str) -> CallRecord | None:
        """The record for `task_id`, or None."""
        return self._read(self._sqlite.connection(), task_id)

    def for_thread(self, thread_id: str) -> list[CallRecord]:
        """Every record of one thread, oldest first (not the closed ones a thread delete
        keeps for late workers: they are no longer the thread's)."""
        records = self._select(
            "thread_id = ? AND json_extract(doc, '$.forget_at') IS NULL", (thread_id,)
        )
        return sorted(records, key=lambda record: record.created_at)

    def stale(self, status: CallStatus, updated_before: float, limit: int) -> list[CallRecord]:
        """Up to `limit` records in `status` unchanged since `updated_before`, oldest first."""
        if status not in SWEPT_STATUSES:
            raise ValueError(f"{status} records are not swept; use one of {SWEPT_STATUSES}")
        return self._select(
            "status = ? AND json_extract(doc, '$.updated_at') < ?"
            " ORDER BY json_extract(doc, '$.updated_at') LIMIT ?",
            (str(status), updated_before, limit),
        )

    def overdue(self, now: float, limit: int) -> list[CallRecord]:
        """Up to `limit` INTENDED or DISPATCHED records whose deadline is before `now`."""
        return self._select(
            "status IN (?, ?) AND json_extract(doc, '$.deadline') < ?"
            " ORDER BY json_extract(doc, '$.deadline') LIMIT ?",
            (*sorted(OPEN_STATUSES), now, limit),
        )

    def abandoned(self, limit: int) -> list[CallRecord]:
        """Up to `limit` ABANDONED records of live threads (parked), oldest change first."""
        return self._select(
            "status = ? AND json_extract(doc, '$.forget_at') IS NULL"
            " ORDER BY json_extract(doc, '$.updated_at') LIMIT ?",
            (str(CallStatus.ABANDONED), limit),
        )

    def forget_thread(self, thread_id: str, keep: Collection[str]) -> None:
        """Delete the thread's rows but those in `keep`, in one transaction."""
        kept = sorted(keep)
        marks = ", ".join("?" * len(kept))
        with self._transaction() as db:
            db.execute(
                f"DELETE FROM tasks WHERE thread_id = ? AND task_id NOT IN ({marks})",
                (thread_id, *kept),
            )

    def forget_expired(self, now: float) -> int:
        """Delete the closed rows of deleted threads whose `forget_at` has passed (SQLite
        knows no TTL: nothing else expires)."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM tasks WHERE status = ? AND json_extract(doc, '$.forget_at') < ?",
                (str(CallStatus.ABANDONED), now),
            )
            return cursor.rowcount

    def _select(self, where: str, params: tuple[object, ...]) -> list[CallRecord]:
        rows = (
            self._sqlite.connection()
            .execute(f"SELECT doc FROM tasks WHERE {where}", params)
            .fetchall()
        )
        return [CallRecord.model_validate_json(row[0]) for row in rows]

    async def aintend(self, record: CallRecord) -> CallRecord:
        """`intend` from the event loop."""
        return await asyncio.to_thread(self.intend, record)

    async def aget(self, task_id: str) -> CallRecord | None:
        """`get` from the event loop."""
        return await asyncio.to_thread(self.get, task_id)

    async def aupdate(self, task_id: str, change: Transition) -> CallRecord | None:
        """`update` from the event loop."""
        return await asyncio.to_thread(self.update, task_id, change)

    async def afor_thread(self, thread_id: str) -> list[CallRecord]:
        """`for_thread` from the event loop."""
        return await asyncio.to_thread(self.for_thread, thread_id)

    async def aforget_thread(self, thread_id: str, keep: Collection[str]) -> None:
        """`forget_thread` from the event loop."""
        await asyncio.to_thread(self.forget_thread, thread_id, keep)

    def close(self) -> None:
        """Close this thread's connection."""
        self._sqlite.close()
