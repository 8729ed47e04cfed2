"""The run store's documents on plain Redis: a string per document, a sorted set per parent,
reached through `AsyncWire` (pipelined on one connection per event loop); several documents
written together go in one MULTI/EXEC, a conditional write in one Lua call."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from graphrelay.backends.redis.clients import text
from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.redis.wire import AsyncWire, Command
from graphrelay.server.ports import Entry, Guard

# KEYS: every key the write reads or writes. ARGV[1]: JSON {"docs": [[key index, text or
# false]], "filings": [[key index, [id, ...]]], "writes": [[command, key index, arg, ...]]}.
# 1 if written (or if the first write's SET finds its value stored already: this very write,
# retried after a lost reply), 0 if a document or filing differs from what was read.
_PUT_IF_LUA = """
local spec = cjson.decode(ARGV[1])
local first = spec.writes[1]
if first and first[1] == "SET" and redis.call("GET", KEYS[first[2]]) == first[3] then
  return 1
end
for _, doc in ipairs(spec.docs) do
  if redis.call("GET", KEYS[doc[1]]) ~= doc[2] then return 0 end
end
for _, filing in ipairs(spec.filings) do
  local key, ids = KEYS[filing[1]], filing[2]
  if redis.call("ZCARD", key) ~= #ids then return 0 end
  for _, id in ipairs(ids) do
    if not redis.call("ZSCORE", key, id) then return 0 end
  end
end
for _, write in ipairs(spec.writes) do
  redis.call(write[1], KEYS[write[2]], unpack(write, 3))
end
return 1
"""


class RedisDocuments:
    """DocumentStore on plain Redis: a string per document, a sorted set per parent."""

    def __init__(self, url: str, keys: RedisKeys) -> None:
        self._wire = AsyncWire(url)
        self._key = keys.document
        self._filing = keys.filing

    async def put(self, *entries: Entry, drop: Sequence[tuple[str, str, str]] = ()) -> None:
        """Insert or replace documents and remove those in `drop`, in one MULTI/EXEC, keeping
        first insertion order."""
        commands = self._writes(entries, drop)
        await self._wire.execute(commands, atomic=len(entries) + len(drop) > 1)

    async def put_if(
        self, guard: Guard, *entries: Entry, drop: Sequence[tuple[str, str, str]] = ()
    ) -> bool:
        """`put` if every document and filing in `guard` is still as given, in one Lua call;
        True if written."""
        keys: list[str] = []

        def index(key: str) -> int:  # Lua's 1-based index of `key` in KEYS
            keys.append(key)
            return len(keys)

        spec = {
            "docs": [
                [index(self._key(kind, i)), False if doc is None else doc]
                for kind, i, doc in guard.docs
            ],
            "filings": [
                [index(self._filing(kind, parent)), sorted(ids)]
                for kind, parent, ids in guard.filings
            ],
            "writes": [
                [name, index(str(key)), *map(str, args)]
                for name, key, *args in self._writes(entries, drop)
            ],
        }
        written = await self._wire.call("EVAL", _PUT_IF_LUA, len(keys), *keys, json.dumps(spec))
        return bool(written)

    def _writes(
        self, entries: Sequence[Entry], drop: Sequence[tuple[str, str, str]]
    ) -> list[Command]:
        commands: list[Command] = []
        for e in entries:
            commands.append(("SET", self._key(e.kind, e.doc_id), e.doc))
            if e.parent:
                commands.append(("ZADD", self._filing(e.kind, e.parent), "NX", time.time(),
                                 e.doc_id))  # fmt: skip
        return commands + self._removal(drop)

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

    def _removal(self, entries: Sequence[tuple[str, str, str]]) -> list[Command]:
        commands: list[Command] = []
        for kind, doc_id, parent in entries:
            commands.append(("DEL", self._key(kind, doc_id)))
            if parent:
                commands.append(("ZREM", self._filing(kind, parent), doc_id))
        return commands
