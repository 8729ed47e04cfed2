"""The run store's documents on plain Redis: a string per document, a sorted set per parent,
reached through `AsyncWire` (pipelined on one connection per event loop); several documents
written together go in one MULTI/EXEC."""

from __future__ import annotations

import time
from collections.abc import Sequence

from graphrelay.backends.redis.clients import text
from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.redis.wire import AsyncWire
from graphrelay.server.ports import Entry


class RedisDocuments:
    """DocumentStore on plain Redis: a string per document, a sorted set per parent."""

    def __init__(self, url: str, keys: RedisKeys) -> None:
        self._wire = AsyncWire(url)
        self._key = keys.document
        self._filing = keys.filing

    async def put(self, *entries: Entry, drop: Sequence[tuple[str, str, str]] = ()) -> None:
        """Insert or replace documents and remove those in `drop`, in one MULTI/EXEC, keeping
        first insertion order."""
        commands: list[tuple[str | float, ...]] = []
        for e in entries:
            commands.append(("SET", self._key(e.kind, e.doc_id), e.doc))
            if e.parent:
                commands.append(("ZADD", self._filing(e.kind, e.parent), "NX", time.time(),
                                 e.doc_id))  # fmt: skip
        commands += self._removal(drop)
        await self._wire.execute(commands, atomic=len(entries) + len(drop) > 1)

    async def get(self, *keys: tuple[str, str]) -> list[str | None]:
        """The documents at (kind, id) keys, None where missing."""
        docs = await self._wire.call("MGET", *[self._key(kind, i) for kind, i in keys])
        return [text(doc) if doc is not None else None for doc in docs]

    async def children(self, kind: str, parent: str) -> list[str]:
        """Documents filed under `parent`, oldest first."""
        ids = await self._wire.call("ZRANGE", self._filing(kind, parent), 0, -1)
        if not ids:
            return []
        docs = await self._wire.call("MGET", *[self._key(kind, text(i)) for i in ids])
        return [text(doc) for doc in docs if doc is not None]

    async def filed(self, kind: str, parent: str) -> list[str]:
        """Ids of the documents filed under `parent`, oldest first."""
        return [text(i) for i in await self._wire.call("ZRANGE", self._filing(kind, parent), 0, -1)]

    async def delete(self, *entries: tuple[str, str, str]) -> None:
        """Remove documents and their filing, in one MULTI/EXEC."""
        await self._wire.execute(self._removal(entries), atomic=True)

    def _removal(self, entries: Sequence[tuple[str, str, str]]) -> list[tuple[str | float, ...]]:
        commands: list[tuple[str | float, ...]] = []
        for kind, doc_id, parent in entries:
            commands.append(("DEL", self._key(kind, doc_id)))
            if parent:
                commands.append(("ZREM", self._filing(kind, parent), doc_id))
        return commands
