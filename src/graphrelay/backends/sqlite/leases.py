"""Run leases in a SQLite table: the embedded profile."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from graphrelay.backends.sqlite.connection import ThreadLocalSqlite


class SqliteLeases:
    """RunLeases in a SQLite table; UPDATE ... WHERE makes renew and claim atomic.

    SQLite is local and quick: each call runs in the default thread pool.
    """

    def __init__(self, path: Path) -> None:
        self._sqlite = ThreadLocalSqlite(path)
        self._sqlite.connection().execute(
            "CREATE TABLE IF NOT EXISTS leases (run_id TEXT PRIMARY KEY, owner TEXT, until REAL)"
        )

    def _grant(self, run_id: str, owner: str, seconds: float) -> None:
        """Give `owner` the run's lease for `seconds`."""
        self._sqlite.connection().execute(
            "INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (run_id, owner, time.time() + seconds)
        )

    def _renew(self, run_id: str, owner: str, seconds: float) -> bool:
        """Extend the lease if `owner` still holds it."""
        return self._set_where(run_id, owner, seconds, "owner = ?", owner)

    def _claim(self, run_id: str, owner: str, seconds: float) -> bool:
        """Take the lease if it has run out; True if `owner` got it."""
        return self._set_where(run_id, owner, seconds, "until < ?", time.time())

    def _set_where(
        self, run_id: str, owner: str, seconds: float, condition: str, value: object
    ) -> bool:
        cursor = self._sqlite.connection().execute(
            f"UPDATE leases SET owner = ?, until = ? WHERE run_id = ? AND {condition}",
            (owner, time.time() + seconds, run_id, value),
        )
        return cursor.rowcount == 1

    def _release(self, run_id: str) -> None:
        """The run stopped: nobody needs its lease."""
        self._sqlite.connection().execute("DELETE FROM leases WHERE run_id = ?", (run_id,))

    def _expired(self) -> list[str]:
        """Runs whose lease has run out."""
        rows = self._sqlite.connection().execute(
            "SELECT run_id FROM leases WHERE until < ?", (time.time(),)
        )
        return [str(row[0]) for row in rows]

    async def grant(self, run_id: str, owner: str, seconds: float) -> None:
        """Give `owner` the run's lease for `seconds`."""
        await asyncio.to_thread(self._grant, run_id, owner, seconds)

    async def renew(self, run_id: str, owner: str, seconds: float) -> bool:
        """Extend the lease if `owner` still holds it."""
        return await asyncio.to_thread(self._renew, run_id, owner, seconds)

    async def claim(self, run_id: str, owner: str, seconds: float) -> bool:
        """Take the lease if it has run out; True if `owner` got it."""
        return await asyncio.to_thread(self._claim, run_id, owner, seconds)

    async def release(self, run_id: str) -> None:
        """The run stopped: nobody needs its lease."""
        await asyncio.to_thread(self._release, run_id)

    async def expired(self) -> list[str]:
        """Runs whose lease has run out."""
        return await asyncio.to_thread(self._expired)
