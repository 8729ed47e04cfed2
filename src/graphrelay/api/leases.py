"""Run leases: a run belongs to the API process that renews its lease; when the lease runs out
(that process died) any replica may claim the run and carry it on from its last checkpoint."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Protocol

from graphrelay.async_wire import AsyncWire
from graphrelay.redis_clients import text
from graphrelay.sqlite import ThreadLocalSqlite


class RunLeases(Protocol):
    """Who executes which run, until when."""

    async def grant(self, run_id: str, owner: str, seconds: float) -> None:
        """Give `owner` the run's lease for `seconds`."""
        ...

    async def renew(self, run_id: str, owner: str, seconds: float) -> bool:
        """Extend the lease if `owner` still holds it."""
        ...

    async def claim(self, run_id: str, owner: str, seconds: float) -> bool:
        """Take the lease if it has run out; True if `owner` got it."""
        ...

    async def release(self, run_id: str) -> None:
        """The run stopped: nobody needs its lease."""
        ...

    async def expired(self) -> list[str]:
        """Runs whose lease has run out."""
        ...


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


# KEYS: the until zset, the owner hash. ARGV: run, owner, new until, now, mode (renew|claim).
_TAKE_LUA = """
local expires = redis.call("ZSCORE", KEYS[1], ARGV[1])
if not expires then return 0 end
if ARGV[5] == "renew" and redis.call("HGET", KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[5] == "claim" and tonumber(expires) >= tonumber(ARGV[4]) then return 0 end
redis.call("ZADD", KEYS[1], ARGV[3], ARGV[1])
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
return 1
"""


class RedisLeases:
    """RunLeases on Redis: a sorted set by expiry and a hash of owners, changed by Lua."""

    def __init__(self, url: str, prefix: str) -> None:
        self._wire = AsyncWire(url)
        self._until = f"{prefix}:run-leases"
        self._owners = f"{prefix}:run-lease-owners"

    async def grant(self, run_id: str, owner: str, seconds: float) -> None:
        """Give `owner` the run's lease for `seconds`."""
        await self._wire.execute([("ZADD", self._until, time.time() + seconds, run_id),
                                  ("HSET", self._owners, run_id, owner)], atomic=True)  # fmt: skip

    async def renew(self, run_id: str, owner: str, seconds: float) -> bool:
        """Extend the lease if `owner` still holds it."""
        return await self._take(run_id, owner, seconds, "renew")

    async def claim(self, run_id: str, owner: str, seconds: float) -> bool:
        """Take the lease if it has run out; True if `owner` got it."""
        return await self._take(run_id, owner, seconds, "claim")

    async def _take(self, run_id: str, owner: str, seconds: float, mode: str) -> bool:
        now = time.time()
        taken = await self._wire.call("EVAL", _TAKE_LUA, 2, self._until, self._owners,
                                      run_id, owner, now + seconds, now, mode)  # fmt: skip
        return bool(taken)

    async def release(self, run_id: str) -> None:
        """The run stopped: nobody needs its lease."""
        await self._wire.execute([("ZREM", self._until, run_id),
                                  ("HDEL", self._owners, run_id)], atomic=True)  # fmt: skip

    async def expired(self) -> list[str]:
        """Runs whose lease has run out."""
        found = await self._wire.call("ZRANGEBYSCORE", self._until, "-inf", time.time())
        return [text(run_id) for run_id in found]


def open_leases(ledger_url: str, prefix: str, data_dir: Path) -> RunLeases:
    """Leases live beside the runs: in Redis when the ledger is, else in SQLite."""
    if ledger_url.startswith(("redis://", "rediss://")):
        return RedisLeases(ledger_url, prefix)
    return SqliteLeases(data_dir / "runs.sqlite")
