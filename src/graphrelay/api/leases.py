"""Run leases: a run belongs to the API process that renews its lease; when the lease runs out
(that process died) any replica may claim the run and carry it on from its last checkpoint."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

from graphrelay.redis_clients import sync_client
from graphrelay.sqlite import ThreadLocalSqlite


class RunLeases(Protocol):
    """Who executes which run, until when."""

    def grant(self, run_id: str, owner: str, seconds: float) -> None:
        """Give `owner` the run's lease for `seconds`."""
        ...

    def renew(self, run_id: str, owner: str, seconds: float) -> bool:
        """Extend the lease if `owner` still holds it."""
        ...

    def claim(self, run_id: str, owner: str, seconds: float) -> bool:
        """Take the lease if it has run out; True if `owner` got it."""
        ...

    def release(self, run_id: str) -> None:
        """The run stopped: nobody needs its lease."""
        ...

    def expired(self) -> list[str]:
        """Runs whose lease has run out."""
        ...


class SqliteLeases:
    """RunLeases in a SQLite table; UPDATE ... WHERE makes renew and claim atomic."""

    def __init__(self, path: Path) -> None:
        self._sqlite = ThreadLocalSqlite(path)
        self._sqlite.connection().execute(
            "CREATE TABLE IF NOT EXISTS leases (run_id TEXT PRIMARY KEY, owner TEXT, until REAL)"
        )

    def grant(self, run_id: str, owner: str, seconds: float) -> None:
        """Give `owner` the run's lease for `seconds`."""
        self._sqlite.connection().execute(
            "INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (run_id, owner, time.time() + seconds)
        )

    def renew(self, run_id: str, owner: str, seconds: float) -> bool:
        """Extend the lease if `owner` still holds it."""
        return self._set_where(run_id, owner, seconds, "owner = ?", owner)

    def claim(self, run_id: str, owner: str, seconds: float) -> bool:
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

    def release(self, run_id: str) -> None:
        """The run stopped: nobody needs its lease."""
        self._sqlite.connection().execute("DELETE FROM leases WHERE run_id = ?", (run_id,))

    def expired(self) -> list[str]:
        """Runs whose lease has run out."""
        rows = self._sqlite.connection().execute(
            "SELECT run_id FROM leases WHERE until < ?", (time.time(),)
        )
        return [str(row[0]) for row in rows]


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
        self._redis = sync_client(url, decode_responses=True)
        self._until = f"{prefix}:run-leases"
        self._owners = f"{prefix}:run-lease-owners"

    def grant(self, run_id: str, owner: str, seconds: float) -> None:
        """Give `owner` the run's lease for `seconds`."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self._until, {run_id: time.time() + seconds})
            pipe.hset(self._owners, run_id, owner)
            pipe.execute()

    def renew(self, run_id: str, owner: str, seconds: float) -> bool:
        """Extend the lease if `owner` still holds it."""
        return self._take(run_id, owner, seconds, "renew")

    def claim(self, run_id: str, owner: str, seconds: float) -> bool:
        """Take the lease if it has run out; True if `owner` got it."""
        return self._take(run_id, owner, seconds, "claim")

    def _take(self, run_id: str, owner: str, seconds: float, mode: str) -> bool:
        now = time.time()
        taken = self._redis.eval(
            _TAKE_LUA, 2, self._until, self._owners, run_id, owner, now + seconds, now, mode
        )
        return bool(taken)

    def release(self, run_id: str) -> None:
        """The run stopped: nobody needs its lease."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._until, run_id)
            pipe.hdel(self._owners, run_id)
            pipe.execute()

    def expired(self) -> list[str]:
        """Runs whose lease has run out."""
        found: list[str] = self._redis.zrangebyscore(self._until, "-inf", time.time())  # type: ignore[assignment]
        return found


def open_leases(ledger_url: str, prefix: str, data_dir: Path) -> RunLeases:
    """Leases live beside the runs: in Redis when the ledger is, else in SQLite."""
    if ledger_url.startswith(("redis://", "rediss://")):
        return RedisLeases(ledger_url, prefix)
    return SqliteLeases(data_dir / "runs.sqlite")
