"""Redis clients whose pools wait for a free connection instead of failing.

redis-py's default pools allow 100 connections and then raise `MaxConnectionsError`; under a
burst (hundreds of runs resuming at once) that turned into 500s. A blocking pool makes the
burst queue for a connection instead.
"""

from __future__ import annotations

import asyncio
import weakref

import redis
import redis.asyncio as aioredis

MAX_CONNECTIONS = 64
WAIT_FOR_CONNECTION = 30.0


def sync_client(url: str, *, decode_responses: bool = False) -> redis.Redis:
    """A client for threads, sharing a blocking pool."""
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_FOR_CONNECTION,
        decode_responses=decode_responses,
    )  # fmt: skip
    return redis.Redis(connection_pool=pool)


def async_client(url: str, *, decode_responses: bool = False) -> aioredis.Redis:
    """A client for one event loop, with a blocking pool."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_FOR_CONNECTION,
        decode_responses=decode_responses,
    )  # fmt: skip
    return aioredis.Redis(connection_pool=pool)


def text(value: object) -> str:
    """A Redis reply (bytes from a client without `decode_responses`) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


class PerLoopClients:
    """One async client per event loop: an asyncio client breaks on any other loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> aioredis.Redis:
        """The running loop's client, made on first use."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = async_client(self.url)
        return client
