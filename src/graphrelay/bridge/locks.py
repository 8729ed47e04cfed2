"""Per-thread locks: at most one graph run or resume touches a thread at a time."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from graphrelay.ports import ThreadLocks
from graphrelay.redis_clients import PerLoopClients


class LocalThreadLocks:
    """asyncio locks in one process: enough for the embedded profile's single API process."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        """Wait for the thread's lock and hold it for the block."""
        lock = self._locks.get(thread_id)
        if lock is None:
            lock = self._locks[thread_id] = asyncio.Lock()
        async with lock:
            yield


class RedisThreadLocks:
    """Redis locks shared by every API replica; a holder that dies frees its lock on expiry.

    The lease is short and extended while held, so a crashed replica blocks a thread for at
    most `lease` seconds.
    """

    def __init__(self, url: str, prefix: str = "graphrelay", lease: float = 15.0) -> None:
        self._clients = PerLoopClients(url)
        self._prefix = prefix
        self._lease = lease

    @contextlib.asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        """Wait for the thread's lock and hold it for the block, extending its lease."""
        lock = self._clients.get().lock(
            f"{self._prefix}:thread-lock:{thread_id}", timeout=self._lease, sleep=0.01
        )
        await lock.acquire()
        keeper = asyncio.create_task(self._keep(lock))
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(Exception):
                await lock.release()

    async def _keep(self, lock: aioredis.lock.Lock) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            await lock.reacquire()


def thread_locks_for(ledger_url: str, prefix: str, lease: float = 15.0) -> ThreadLocks:
    """Redis locks when the ledger is in Redis, else in-process locks."""
    if ledger_url.startswith(("redis://", "rediss://")):
        return RedisThreadLocks(ledger_url, prefix, lease)
    return LocalThreadLocks()
