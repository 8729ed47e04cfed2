"""The run store's documents on plain Redis: a string per document, a sorted set per parent,
reached through `AsyncWire` (pipelined on one connection per event loop); several documents
written together go in one MULTI/EXEC, a conditional write in one Lua call.

With a TTL, every document written or touched expires that long after, and so does the
filing of a parent that is itself a document's (a thread's runs). A filing whose parent never
expires (a root: every thread is filed under `all-threads`) cannot expire with its members, so
it has a companion sorted set of the same ids by expiry: each write and touch moves the id's
expiry, and the ids whose expiry passed leave both sets, in every write to the root, in the
sweeper's `forget_expired`, and in a read that finds their document gone (a conditional
write leaves the trimming to those).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence

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

FORGET_BATCH = 1000  # expired ids dropped per call

# KEYS: a root filing, its expiry companion. ARGV: now, how many at most. The ids dropped.
_FORGET_EXPIRED_LUA = """
local gone = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", "(" .. ARGV[1], "LIMIT", 0, ARGV[2])
for _, id in ipairs(gone) do
  redis.call("ZREM", KEYS[1], id)
  redis.call("ZREM", KEYS[2], id)
end
return #gone
"""


class RedisDocuments:
    """DocumentStore on plain Redis: a string per document, a sorted set per parent."""

    def __init__(
        self,
        url: str,
        keys: RedisKeys,
        ttl_seconds: float | None = None,
        roots: Collection[tuple[str, str]] = (),
    ) -> None:
        """`ttl_seconds`: documents expire that long after their last write or touch (None:
        never); `roots`: the (kind, parent) filings whose parent is no document."""
        self._wire = AsyncWire(url)
        self._keys = keys
        self._key = keys.document
        self._filing = keys.filing
        self._ttl_ms = int(ttl_seconds * 1000) if ttl_seconds else 0
        self._roots = frozenset(roots)

    async def put(
        self,
        *entries: Entry,
        drop: Sequence[tuple[str, str, str]] = (),
        touch: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        """Insert or replace documents, remove those in `drop` and extend the lifetime of
        those in `touch`, in one MULTI/EXEC, keeping first insertion order."""
        commands = self._writes(entries, drop, touch, trim=True)
        if commands:
            touched = len(touch) if self._ttl_ms else 0
            await self._wire.execute(commands, atomic=len(entries) + len(drop) + touched > 1)

    async def put_if(
        self,
        guard: Guard,
        *entries: Entry,
        drop: Sequence[tuple[str, str, str]] = (),
        touch: Sequence[tuple[str, str, str]] = (),
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
                for name, key, *args in self._writes(entries, drop, touch, trim=False)
            ],
        }
        written = await self._wire.call("EVAL", _PUT_IF_LUA, len(keys), *keys, json.dumps(spec))
        return bool(written)

    def _writes(
        self,
        entries: Sequence[Entry],
        drop: Sequence[tuple[str, str, str]],
        touch: Sequence[tuple[str, str, str]],
        *,
        trim: bool,
    ) -> list[Command]:
        """The commands of a write, each naming its key second (a conditional write runs
        them inside Lua); `trim`: also drop expired ids from the root filings written to."""
        now = time.time()
        commands: list[Command] = []
        for e in entries:
            expiry = ("PX", self._ttl_ms) if self._ttl_ms else ()
            commands.append(("SET", self._key(e.kind, e.doc_id), e.doc, *expiry))
            if e.parent:
                commands += self._file(e.kind, e.doc_id, e.parent, now, trim=trim)
        commands += self._removal(drop)
        if self._ttl_ms:
            for kind, doc_id, parent in touch:
                commands.append(("PEXPIRE", self._key(kind, doc_id), self._ttl_ms))
                if parent:
                    commands += self._file(kind, doc_id, parent, now, existing=True, trim=trim)
        return commands

    def _file(
        self,
        kind: str,
        doc_id: str,
        parent: str,
        now: float,
        *,
        existing: bool = False,
        trim: bool = True,
    ) -> list[Command]:
        """File `doc_id` under `parent` (`existing`: it is filed; only its lifetime moves)."""
        filing = self._filing(kind, parent)
        commands: list[Command] = [] if existing else [("ZADD", filing, "NX", now, doc_id)]
        if not self._ttl_ms:
            return commands
        if (kind, parent) not in self._roots:
            return [*commands, ("PEXPIRE", filing, self._ttl_ms)]
        expiry = self._keys.filing_expiry(kind, parent)
        only_if_there = ("XX",) if existing else ()  # a touch must not file a deleted id again
        commands.append(("ZADD", expiry, *only_if_there, now + self._ttl_ms / 1000, doc_id))
        if trim:
            commands.append(("EVAL", _FORGET_EXPIRED_LUA, 2, filing, expiry, now, 100))
        return commands

    async def get(self, *keys: tuple[str, str]) -> list[str | None]:
        """The documents at (kind, id) keys, None where missing."""
        docs = await self._wire.call("MGET", *[self._key(kind, i) for kind, i in keys])
        return [text(doc) if doc is not None else None for doc in docs]

    async def children(self, kind: str, parent: str) -> list[str]:
        """Documents filed under `parent`, oldest first; ids whose document is gone leave the
        filing."""
        ids = [text(i) for i in await self._wire.call("ZRANGE", self._filing(kind, parent), 0, -1)]
        if not ids:
            return []
        docs = await self._wire.call("MGET", *[self._key(kind, i) for i in ids])
        gone = [(kind, i, parent) for i, doc in zip(ids, docs, strict=True) if doc is None]
        if gone:
            await self._wire.execute(self._unfile(gone), atomic=True)
        return [text(doc) for doc in docs if doc is not None]

    async def filed(self, kind: str, parent: str) -> list[str]:
        """Ids of the documents filed under `parent`, oldest first."""
        return [text(i) for i in await self._wire.call("ZRANGE", self._filing(kind, parent), 0, -1)]

    async def delete(self, *entries: tuple[str, str, str]) -> None:
        """Remove documents and their filing, in one MULTI/EXEC."""
        await self._wire.execute(self._removal(entries), atomic=True)

    async def forget_expired(self) -> int:
        """Drop from every root filing the ids whose documents expired; how many."""
        if not self._ttl_ms:
            return 0
        forgotten, now = 0, time.time()
        for kind, parent in sorted(self._roots):
            filing, expiry = self._filing(kind, parent), self._keys.filing_expiry(kind, parent)
            while True:
                count = int(await self._wire.call("EVAL", _FORGET_EXPIRED_LUA, 2, filing,
                                                  expiry, now, FORGET_BATCH))  # fmt: skip
                forgotten += count
                if count < FORGET_BATCH:
                    break
        return forgotten

    def _removal(self, entries: Sequence[tuple[str, str, str]]) -> list[Command]:
        commands: list[Command] = [("DEL", self._key(kind, doc_id)) for kind, doc_id, _ in entries]
        return commands + self._unfile([entry for entry in entries if entry[2]])

    def _unfile(self, entries: Sequence[tuple[str, str, str]]) -> list[Command]:
        commands: list[Command] = []
        for kind, doc_id, parent in entries:
            commands.append(("ZREM", self._filing(kind, parent), doc_id))
            if (kind, parent) in self._roots:
                commands.append(("ZREM", self._keys.filing_expiry(kind, parent), doc_id))
        return commands
