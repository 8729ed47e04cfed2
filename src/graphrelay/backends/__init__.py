"""Adapters, one folder per technology (`redis/`, `sqlite/`, `celery/`, `memory.py`), each
implementing the ports of `bridge/` and `server/`.

This module turns settings into adapters: the one place where a URL (through `urls.py`)
decides which technology serves a port.

| port | setting | Redis | otherwise |
|---|---|---|---|
| `LedgerStore` | `ledger_url` | `redis/ledger.py` | `sqlite/ledger.py` |
| `DocumentStore` | `runs_url` | `redis/documents.py` | `sqlite/documents.py` |
| `RunLeases` | `runs_url` | `redis/leases.py` | `sqlite/leases.py` |
| `ThreadLocks` | `runs_url` | `redis/locks.py` | `memory.py` (one API process) |
| `RunEvents` | `runs_url` | `redis/events.py` | `memory.py` (one API process) |
| checkpointer | `checkpointer_url` | `redis/saver.py` | LangGraph's SQLite, Postgres, memory |
| `Dispatcher` | `broker_url` | `celery/dispatcher.py` | the same (file-system broker) |

`thread_ttl_seconds` (the thread TTL) reaches every Redis adapter: each gives what it writes
for a thread or run that lifetime (see docs/state.md). The SQLite stores and LangGraph's own
savers have no TTL, so a TTL with any of them is refused rather than ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from graphrelay.backends import urls
from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.ports import Dispatcher
from graphrelay.config import Settings
from graphrelay.errors import ConfigurationError
from graphrelay.server.ports import DocumentStore, RunEvents, RunLeases, ThreadLocks
from graphrelay.server.store import ROOT_FILINGS


@dataclass
class Backends:
    """The adapters of one process, opened from its settings."""

    ledger: Ledger
    documents: DocumentStore
    leases: RunLeases
    locks: ThreadLocks
    events: RunEvents
    checkpointer: BaseCheckpointSaver[Any]


@contextlib.asynccontextmanager
async def open_backends(settings: Settings) -> AsyncIterator[Backends]:
    """Every store the settings name, connected; closed when the block ends."""
    ledger = open_ledger(settings.ledger_url, settings.key_prefix, settings.thread_ttl_seconds)
    try:
        async with open_checkpointer(
            settings.checkpointer_url,
            prefix=settings.key_prefix,
            ttl_seconds=settings.thread_ttl_seconds,
        ) as checkpointer:
            backends = Backends(ledger, *_run_stores(settings), checkpointer=checkpointer)
            await backends.events.start()
            try:
                yield backends
            finally:
                await backends.events.close()
    finally:
        ledger.close()


def open_ledger(url: str, prefix: str = "graphrelay", ttl_seconds: float | None = None) -> Ledger:
    """The ledger on `sqlite:///PATH` or `redis://` / `rediss://`; with `ttl_seconds` (Redis
    only) a record expires that long after its last change."""
    if urls.store_kind(url, "ledger", "GRAPHRELAY_LEDGER_URL") == "redis":
        from graphrelay.backends.redis.ledger import RedisLedger

        return Ledger(RedisLedger(url, RedisKeys(prefix), ttl_seconds))
    _refuse_ttl(ttl_seconds, "ledger", url)
    from graphrelay.backends.sqlite.ledger import SqliteLedger

    return Ledger(SqliteLedger(urls.sqlite_path(url)))


def _run_stores(settings: Settings) -> tuple[DocumentStore, RunLeases, ThreadLocks, RunEvents]:
    """Run records and leases in the store `runs_url` names; with Redis, thread locks and
    events are shared by every replica through it, else they stay in this process."""
    url = settings.runs_url
    if urls.store_kind(url, "run store", "GRAPHRELAY_RUNS_URL") == "redis":
        from graphrelay.backends.redis.documents import RedisDocuments
        from graphrelay.backends.redis.events import RedisEvents
        from graphrelay.backends.redis.leases import RedisLeases
        from graphrelay.backends.redis.locks import RedisThreadLocks

        keys, ttl = RedisKeys(settings.key_prefix), settings.thread_ttl_seconds
        # A lock its dead holder left lasts its lease: no longer than the thread's TTL.
        lock_lease = min(settings.run_lease_seconds, ttl or settings.run_lease_seconds)
        return (RedisDocuments(url, keys, ttl, ROOT_FILINGS), RedisLeases(url, keys),
                RedisThreadLocks(url, keys, lock_lease), RedisEvents(url, keys, ttl))  # fmt: skip
    _refuse_ttl(settings.thread_ttl_seconds, "run store", url)
    from graphrelay.backends.memory import LocalEvents, LocalThreadLocks
    from graphrelay.backends.sqlite.documents import SqliteDocuments
    from graphrelay.backends.sqlite.leases import SqliteLeases

    path = urls.sqlite_path(url)
    return SqliteDocuments(path), SqliteLeases(path), LocalThreadLocks(), LocalEvents()


@contextlib.asynccontextmanager
async def open_checkpointer(
    url: str, *, prefix: str = "graphrelay", ttl_seconds: float | None = None
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The saver that `url` names, set up and ready; closed when the block ends.

    `redis://` gives graphrelay's module-free Redis saver (keys under `PREFIX:cp`, expiring
    `ttl_seconds` after a thread's last write or read); `sqlite:///PATH` and `postgresql://...`
    LangGraph's own savers; `memory://` the in-memory one (tests only: it forgets everything
    when the process ends). Those have no TTL: `ttl_seconds` with them raises
    ConfigurationError.
    """
    kind = urls.checkpointer_kind(url)
    if kind != "redis":
        _refuse_ttl(ttl_seconds, "checkpointer", url)
    if kind == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
    elif kind == "redis":
        from graphrelay.backends.redis.saver import RedisSaver

        redis_saver = RedisSaver(
            url, prefix=RedisKeys(prefix).saver.prefix, ttl_seconds=ttl_seconds
        )
        try:
            yield redis_saver
        finally:
            redis_saver.close()
    elif kind == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        path = urls.sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            await saver.setup()
            yield saver
    else:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
            yield saver


def _refuse_ttl(ttl_seconds: float | None, store: str, url: str) -> None:
    if ttl_seconds is not None:
        raise ConfigurationError(
            f"GRAPHRELAY_THREAD_TTL_SECONDS (or GRAPHRELAY_CHECKPOINT_TTL_SECONDS) needs Redis "
            f"for every store, but the {store} is {url}, which has no TTL: use redis:// URLs "
            "(the production profile) or unset the TTL"
        )


async def open_dispatcher(settings: Settings) -> Dispatcher:
    """Celery on the broker `broker_url` names, its queues declared."""
    from graphrelay.backends.celery.app import create_celery_app, declare_topology
    from graphrelay.backends.celery.dispatcher import CeleryDispatcher

    app = create_celery_app(settings)
    await asyncio.to_thread(declare_topology, app)
    return CeleryDispatcher(app)
