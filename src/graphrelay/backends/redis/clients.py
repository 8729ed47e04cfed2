"""Redis clients whose pools wait for a free connection, and that ride out a Redis restart.

redis-py's default pools allow 100 connections and then raise `MaxConnectionsError`; under a
burst (hundreds of runs resuming at once) that turned into 500s. A blocking pool makes the
burst queue for a connection instead.

A command that meets a dropped connection is sent again with backoff for about 15 s, so a
Redis restart (or failover) stalls the API and the workers instead of failing their work. Every
write graphrelay makes is idempotent (a document set, a sorted-set add, a first-write-wins
transition), so a command that did reach the server before the connection dropped is safe to
send again.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

MAX_CONNECTIONS = 64
WAIT_FOR_CONNECTION = 30.0
RETRIES = 12  # backoff 0.05 s doubling to 2 s: about 15 s in all
RETRY_ON = [RedisConnectionError, RedisTimeoutError]


def backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=2.0, base=0.05)


def _pool_options(decode_responses: bool, retry: Retry | AsyncRetry) -> dict[str, Any]:
    """What both pools take: the size and wait of the pool, and the retries on drops."""
    return {
        "max_connections": MAX_CONNECTIONS,
        "timeout": WAIT_FOR_CONNECTION,
        "decode_responses": decode_responses,
        "retry": retry,
        "retry_on_error": RETRY_ON,
    }


def sync_client(url: str, *, decode_responses: bool = False) -> redis.Redis:
    """A client for threads, sharing a blocking pool."""
    options = _pool_options(decode_responses, Retry(backoff(), RETRIES))
    return redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(url, **options))


def async_client(url: str, *, decode_responses: bool = False) -> aioredis.Redis:
    """A client for one event loop, with a blocking pool."""
    options = _pool_options(decode_responses, AsyncRetry(backoff(), RETRIES))
    return aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(url, **options))


def text(value: object) -> str:
    """A Redis reply (bytes from a client without `decode_responses`) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
