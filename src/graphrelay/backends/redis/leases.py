"""Run leases on Redis: a sorted set by expiry and a hash of owners, changed by Lua."""

from __future__ import annotations

import time

from graphrelay.backends.redis.clients import text
from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.redis.wire import AsyncWire

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

    def __init__(self, url: str, keys: RedisKeys) -> None:
        self._wire = AsyncWire(url)
        self._until = keys.run_leases
        self._owners = keys.run_lease_owners

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
