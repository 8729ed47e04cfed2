"""Thread locks on Redis, shared by every API replica: at most one graph run or resume touches
a thread at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.redis.wire import AsyncWire

log = logging.getLogger(__name__)


# KEYS: the lock. ARGV: the holder's token (and the lease in ms): only the holder may act.
_RELEASE_LUA = """
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
"""
_EXTEND_LUA = """
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return 0
"""


class RedisThreadLocks:
    """Redis locks shared by every API replica; a holder that dies frees its lock on expiry.

    The lease is short and extended while held, so a crashed replica blocks a thread for at
    most `lease` seconds.
    """

    def __init__(self, url: str, keys: RedisKeys, lease: float = 15.0, poll: float = 0.01) -> None:
        self._wire = AsyncWire(url)
        self._keys = keys
        self._lease_ms = int(lease * 1000)
        self._poll = poll

    @contextlib.asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        """Wait for the thread's lock and hold it for the block, extending its lease."""
        key, token = self._keys.thread_lock(thread_id), uuid.uuid4().hex
        await self._acquire(key, token)
        keeper = asyncio.create_task(self._keep(key, token))
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(Exception):
                await self._wire.call("EVAL", _RELEASE_LUA, 1, key, token)

    async def _acquire(self, key: str, token: str) -> None:
        # Polled: the holder may be another process, and a dead one frees the key on expiry.
        while True:
            if await self._wire.call("SET", key, token, "NX", "PX", self._lease_ms) is not None:
                return
            await asyncio.sleep(self._poll)

    async def _keep(self, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            if not await self._wire.call("EVAL", _EXTEND_LUA, 1, key, token, self._lease_ms):
                log.error("lost the lock %s while holding it (its lease ran out)", key)
                return
