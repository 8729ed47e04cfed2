"""A LangGraph checkpointer on plain Redis (6.2+ or Valkey), with no modules.

Why our own: the official `langgraph-checkpoint-redis` needs RediSearch and RedisJSON, which
plain Redis, Valkey and most managed services lack, and its `list` slows as threads grow.
This saver keeps each thread in a handful of hashes and sorted sets, so every operation
touches one thread's keys and nothing scans the keyspace but `list(None)` (every checkpoint of
every thread), which finds the threads by their `namespaces` keys. With a TTL every key of a
thread expires with it; the one key shared by threads, a run's `run-threads`, expires with the
run's last checkpoint, which its threads outlive.

Key layout: `SaverKeys` in `keys.py` (the one table of every Redis key graphrelay writes).

Values go through `self.serde` and are stored as `type NUL bytes`. A list that extends the
list this process last wrote for the channel is stored as `+type NUL bytes` of the appended
items, its base named in `d`, with a whole snapshot at least every `snapshot_every` versions
(see `deltas.py`). Each operation is written once as a generator of command batches
(sans-IO), run by the sync and the async driver of `wire.py`; a put is one round trip
(MULTI/EXEC) and a `get_tuple` is one Lua call, plus one HMGET when a value is large.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from graphrelay.backends.redis.deltas import DELTA_MARK, DeltaTracker, needed_with_bases
from graphrelay.backends.redis.keys import SaverKeys
from graphrelay.backends.redis.wire import AsyncWire, Command, Ops, Wire, arun_ops, run_ops

T = TypeVar("T")

SEP = "\x1f"
EMPTY = b"empty\x00"
LIST_CHUNK = 64
SNAPSHOT_EVERY = 32
LARGE_VALUE = 8192  # bytes; get_tuple fetches larger stored pieces outside its Lua script
DELTA_CACHE_SIZE = 256

# One round trip for a checkpoint with its values and writes. KEYS: i c m p v b d, then the
# thread's namespaces and runs sets (only refreshed);
# ARGV: checkpoint id or "" for the latest, writes key prefix and suffix, TTL ms or 0, the size
# above which a value is left out. Each value comes back as its chain, newest piece first (a
# delta's base is in d; a whole value has no entry there). Large pieces come back as {field},
# for one HMGET after: Redis copies a large reply into Lua several times over, which measured
# slower than a second round trip.
GET_TUPLE_LUA = """
local id = ARGV[1]
if id == "" then
  local latest = redis.call("ZREVRANGEBYLEX", KEYS[1], "+", "-", "LIMIT", 0, 1)
  if #latest == 0 then return false end
  id = latest[1]
end
local checkpoint = redis.call("HGET", KEYS[2], id)
if not checkpoint then return false end
local large = tonumber(ARGV[5])
local fields = cjson.decode(redis.call("HGET", KEYS[5], id) or "[]")
local blobs = {}
for _, field in ipairs(fields) do
  local at, chain = field, {}
  while at and chain do
    local size = redis.call("HSTRLEN", KEYS[6], at)
    if size == 0 or #chain > 100000 then
      chain = nil  -- a piece is missing (or a corrupt cycle): leave the value out
    else
      chain[#chain + 1] = size > large and {at} or redis.call("HGET", KEYS[6], at)
      at = redis.call("HGET", KEYS[7], at)
    end
  end
  if chain then
    blobs[#blobs + 1] = field
    blobs[#blobs + 1] = chain
  end
end
local writes_key = ARGV[2] .. id .. ARGV[3]
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  for _, key in ipairs(KEYS) do redis.call("PEXPIRE", key, ttl) end
  redis.call("PEXPIRE", writes_key, ttl)
end
return {id, checkpoint, redis.call("HGET", KEYS[3], id), redis.call("HGET", KEYS[4], id),
        blobs, redis.call("HGETALL", writes_key)}
"""

# Writes deltas whose base is still stored (a prune or delete elsewhere may have removed it);
# KEYS: b d; ARGV: field, base field, delta, ... Returns the fields not written.
PUT_DELTAS_LUA = """
local failed = {}
for n = 1, #ARGV, 3 do
  if redis.call("HEXISTS", KEYS[1], ARGV[n + 1]) == 1 then
    redis.call("HSET", KEYS[1], ARGV[n], ARGV[n + 2])
    redis.call("HSET", KEYS[2], ARGV[n], ARGV[n + 1])
  else
    failed[#failed + 1] = ARGV[n]
  end
end
return failed
"""


@dataclass
class _ValuePlan:
    """How one put stores the channel versions it writes."""

    whole: list[Any] = dataclasses.field(default_factory=list)  # HSET args: field, value, ...
    deltas: list[Any] = dataclasses.field(default_factory=list)  # field, base field, delta, ...
    fields: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)  # → field, depth


class RedisSaver(BaseCheckpointSaver[str]):
    """Checkpointer on plain Redis; sync and async methods share one implementation."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "graphrelay:cp",
        ttl_seconds: float | None = None,
        serde: SerializerProtocol | None = None,
        snapshot_every: int = SNAPSHOT_EVERY,
        delta_cache_size: int = DELTA_CACHE_SIZE,
    ) -> None:
        """`snapshot_every`: a list channel is stored whole at least every that many versions
        and as deltas in between (1: always whole); `delta_cache_size`: how many channels'
        last written lists are kept to compare new values with."""
        super().__init__(serde=serde)
        self.url = url
        self.prefix = prefix
        self.keys = SaverKeys(prefix)
        self.ttl_ms = int(ttl_seconds * 1000) if ttl_seconds else 0
        self._deltas = DeltaTracker(snapshot_every, delta_cache_size)
        self._wire = Wire(url)
        self._async_wire = AsyncWire(url)

    def _ttl(self, keys: Sequence[str]) -> builtins.list[Command]:
        return [("PEXPIRE", key, self.ttl_ms) for key in keys] if self.ttl_ms else []

    # -- drivers -------------------------------------------------------------------------

    def _run(self, ops: Ops[T]) -> T:
        return run_ops(self._wire, ops)

    async def _arun(self, ops: Ops[T]) -> T:
        return await arun_ops(self._async_wire, ops)

    # -- put -----------------------------------------------------------------------------

    def _put_ops(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Ops[RunnableConfig]:
        thread_id = str(config["configurable"]["thread_id"])
        ns = str(config["configurable"].get("checkpoint_ns", ""))
        checkpoint_id = checkpoint["id"]
        keys = self.keys.namespace(thread_id, ns)
        stored: dict[str, Any] = dict(checkpoint)
        values: dict[str, Any] = stored.pop("channel_values")
        plan = self._plan_values(thread_id, ns, values, new_versions)
        reads = [_blob_field(ch, v) for ch, v in checkpoint["channel_versions"].items()]
        full_metadata = get_checkpoint_metadata(config, metadata)
        run_id = full_metadata.get("run_id")
        commands: builtins.list[Command] = []
        if run_id:
            commands.append(("SADD", self.keys.run_threads(run_id), thread_id))
            commands += self._ttl([self.keys.run_threads(run_id)])
        parent_id = config["configurable"].get("checkpoint_id") or ""
        queued: builtins.list[Command] = [
            ("SADD", self.keys.namespaces(thread_id), ns),
            ("ZADD", keys.index, 0, checkpoint_id),
            ("HSET", keys.checkpoints, checkpoint_id, self._dump(stored)),
            ("HSET", keys.metadata, checkpoint_id, self._dump(full_metadata)),
            ("HSET", keys.parents, checkpoint_id, parent_id),
            ("HSET", keys.versions, checkpoint_id, json.dumps(reads)),
        ]
        if plan.whole:
            # d must name exactly the stored deltas: reads follow it without parsing values.
            queued += [("HSET", keys.blobs, *plan.whole), ("HDEL", keys.deltas, *plan.whole[::2])]
        deltas_at = len(queued)
        if plan.deltas:
            queued.append(("EVAL", PUT_DELTAS_LUA, 2, keys.blobs, keys.deltas, *plan.deltas))
        thread_keys = [*keys.fixed(), self.keys.namespaces(thread_id), self.keys.runs(thread_id)]
        if run_id:
            entry = f"{ns}{SEP}{checkpoint_id}"
            queued += [("SADD", self.keys.runs(thread_id), str(run_id)),
                       ("SADD", self.keys.run(thread_id, run_id), entry)]  # fmt: skip
            thread_keys.append(self.keys.run(thread_id, run_id))
        queued += self._ttl(thread_keys)
        replies = yield False, [*commands, ("MULTI",), *queued, ("EXEC",)]
        if plan.deltas:
            missing = [f.decode() for f in replies[-1][deltas_at]]
            if missing:
                # A delta's base was deleted meanwhile: store those values whole instead.
                yield False, [("HSET", keys.blobs, *self._whole(plan, values, missing))]
        self._remember(thread_id, ns, values, plan)
        return _config(thread_id, ns, checkpoint_id)

    def _plan_values(
        self, thread_id: str, ns: str, values: dict[str, Any], new_versions: ChannelVersions
    ) -> _ValuePlan:
        """Which new channel versions are written whole and which as deltas."""
        plan = _ValuePlan()
        for channel, version in new_versions.items():
            field = _blob_field(channel, version)
            plan.fields[channel] = (field, 0)
            if channel not in values:
                plan.whole += [field, EMPTY]
                continue
            delta = self._deltas.plan((thread_id, ns, channel), values[channel])
            if delta is None or delta.base.field == field:  # a version put again: keep it whole
                plan.whole += [field, self._dump(values[channel])]
                continue
            plan.fields[channel] = (field, delta.base.depth + 1)
            plan.deltas += [field, delta.base.field, DELTA_MARK + self._dump(delta.appended)]
        return plan

    def _whole(
        self, plan: _ValuePlan, values: dict[str, Any], fields: builtins.list[str]
    ) -> builtins.list[Any]:
        """HSET arguments storing the values of `fields` whole; they become snapshots."""
        arguments: builtins.list[Any] = []
        for channel, (field, _) in plan.fields.items():
            if field in fields:
                arguments += [field, self._dump(values[channel])]
                plan.fields[channel] = (field, 0)
        return arguments

    def _remember(self, thread_id: str, ns: str, values: dict[str, Any], plan: _ValuePlan) -> None:
        for channel, (field, depth) in plan.fields.items():
            self._deltas.record((thread_id, ns, channel), field, values.get(channel), depth)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint atomically; only the channel versions that changed are written."""
        return self._run(self._put_ops(config, checkpoint, metadata, new_versions))

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint atomically; only the channel versions that changed are written."""
        return await self._arun(self._put_ops(config, checkpoint, metadata, new_versions))

    # -- put_writes ----------------------------------------------------------------------

    def _put_writes_ops(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
        task_path: str,
    ) -> Ops[None]:  # fmt: skip
        configurable = config["configurable"]
        keys = self.keys.namespace(
            str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        )
        key = keys.writes(configurable["checkpoint_id"])
        commands: builtins.list[Command] = []
        for idx, (channel, value) in enumerate(writes):
            index = WRITES_IDX_MAP.get(channel, idx)
            field = f"{task_id}{SEP}{index}"
            packed = self._pack_write(task_id, channel, value, task_path)
            # Ordinary writes keep the first copy (a retried task writes the same); special
            # writes (errors, interrupts, resumes) replace the previous one.
            commands.append(("HSETNX" if index >= 0 else "HSET", key, field, packed))
        if commands:
            commands += self._ttl([key])
            # A single command is atomic by itself; MULTI/EXEC would only add two more.
            yield len(commands) > 1, commands

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes; storing the same writes again changes nothing."""
        self._run(self._put_writes_ops(config, writes, task_id, task_path))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes; storing the same writes again changes nothing."""
        await self._arun(self._put_writes_ops(config, writes, task_id, task_path))

    # -- get_tuple -----------------------------------------------------------------------

    def _get_tuple_ops(self, config: RunnableConfig) -> Ops[CheckpointTuple | None]:
        thread_id = str(config["configurable"]["thread_id"])
        ns = str(config["configurable"].get("checkpoint_ns", ""))
        keys = self.keys.namespace(thread_id, ns)
        call = ("EVAL", GET_TUPLE_LUA, 9, *keys.fixed(), self.keys.namespaces(thread_id),
                self.keys.runs(thread_id), get_checkpoint_id(config) or "",
                keys.writes_prefix, keys.suffix, self.ttl_ms, LARGE_VALUE)  # fmt: skip
        [found] = yield False, [call]
        if not found:
            return None
        raw_id, checkpoint, metadata, parent, blobs, writes = found
        chains = dict(zip(blobs[::2], blobs[1::2], strict=True))
        large = [
            piece[0] for chain in chains.values() for piece in chain if isinstance(piece, list)
        ]
        if large:
            [fetched] = yield False, [("HMGET", keys.blobs, *large)]
            if any(value is None for value in fetched):  # pruned meanwhile: read it all again
                return (yield from self._get_tuple_ops(config))
            by_field = dict(zip(large, fetched, strict=True))
            chains = {f: [by_field[p[0]] if isinstance(p, list) else p for p in chain]
                      for f, chain in chains.items()}  # fmt: skip
        checkpoint_id = raw_id.decode()
        return self._tuple(thread_id, ns, checkpoint_id, checkpoint, metadata, parent,
                           self._load_blobs(chains),
                           dict(zip(writes[::2], writes[1::2], strict=True)))  # fmt: skip

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` names, or the thread's latest, with values and writes."""
        return self._run(self._get_tuple_ops(config))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` names, or the thread's latest, with values and writes."""
        return await self._arun(self._get_tuple_ops(config))

    # -- list ----------------------------------------------------------------------------

    def _candidates_ops(
        self, config: RunnableConfig | None, before: RunnableConfig | None, limit: int | None
    ) -> Ops[builtins.list[tuple[str, str, builtins.list[str]]]]:
        """(thread, namespace, checkpoint ids newest first) for every place `list` looks."""
        if config is not None:
            threads = [str(config["configurable"]["thread_id"])]
        else:
            threads = yield from self._every_thread_ops()
        wanted_ns = config["configurable"].get("checkpoint_ns") if config else None
        namespaces = yield False, [("SMEMBERS", self.keys.namespaces(t)) for t in threads]
        places = [(t, ns.decode()) for t, found in zip(threads, namespaces, strict=True)
                  for ns in sorted(found)
                  if wanted_ns is None or ns.decode() == wanted_ns]  # fmt: skip
        before_id = get_checkpoint_id(before) if before else None
        upper = f"({before_id}" if before_id else "+"
        paging = ("LIMIT", 0, limit) if limit is not None else ()
        id_lists = yield (
            False,
            [
                ("ZREVRANGEBYLEX", self.keys.namespace(t, ns).index, upper, "-", *paging)
                for t, ns in places
            ],
        )
        only = get_checkpoint_id(config) if config else None
        return [
            (t, ns, [i.decode() for i in ids if only is None or i.decode() == only])
            for (t, ns), ids in zip(places, id_lists, strict=True)
        ]

    def _every_thread_ops(self) -> Ops[builtins.list[str]]:
        """Every thread id, found by its `namespaces` key (SCAN: only `list(None)` asks)."""
        start, end = len(self.keys.thread("")) - 1, -len("}:namespaces")
        found: set[str] = set()
        cursor: Any = 0
        while True:
            [(cursor, names)] = yield (
                False,
                [("SCAN", cursor, "MATCH", self.keys.namespaces_pattern(), "COUNT", 1000)],
            )
            types = (yield False, [("TYPE", name) for name in names]) if names else []
            # a set: a namespace may end in "}:namespaces" too, on a writes hash
            found |= {name.decode()[start:end] for name, kind in zip(names, types, strict=True)
                      if _text(kind) == "set"}  # fmt: skip
            if int(cursor) == 0:
                return sorted(found)

    def _tuples_ops(
        self, thread_id: str, ns: str, ids: builtins.list[str]
    ) -> Ops[builtins.list[CheckpointTuple]]:
        keys = self.keys.namespace(thread_id, ns)
        checkpoints, metadata, parents, reads, deltas, *writes = yield (
            False,
            [
                ("HMGET", keys.checkpoints, *ids),
                ("HMGET", keys.metadata, *ids),
                ("HMGET", keys.parents, *ids),
                ("HMGET", keys.versions, *ids),
                ("HGETALL", keys.deltas),
                *[("HGETALL", keys.writes(checkpoint_id)) for checkpoint_id in ids],
            ],
        )
        bases = _pairs(deltas)
        read_lists = [[f.encode() for f in json.loads(r or "[]")] for r in reads]
        fields = sorted(needed_with_bases({f for r in read_lists for f in r}, bases))
        blob_values = (yield False, [("HMGET", keys.blobs, *fields)])[0] if fields else []
        blobs = {f: v for f, v in zip(fields, blob_values, strict=True) if v is not None}
        tuples = []
        for n, checkpoint_id in enumerate(ids):
            if checkpoints[n] is None:  # deleted or expired since the index was read
                continue
            chains = {f: chain for f in read_lists[n] if (chain := _chain(f, blobs, bases))}
            values, pending = self._load_blobs(chains), _pairs(writes[n])
            tuples.append(self._tuple(thread_id, ns, checkpoint_id, checkpoints[n], metadata[n],
                                      parents[n], values, pending))  # fmt: skip
        return tuples

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first, by thread and namespace, filtered by metadata."""
        wanted = _Selection(filter, limit)
        for thread_id, ns, ids in self._run(self._candidates_ops(config, before, wanted.page)):
            for chunk in _chunks(ids):
                yield from wanted.take(self._run(self._tuples_ops(thread_id, ns, chunk)))
                if wanted.full:
                    return

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first, by thread and namespace, filtered by metadata."""
        wanted = _Selection(filter, limit)
        for thread_id, ns, ids in await self._arun(
            self._candidates_ops(config, before, wanted.page)
        ):
            for chunk in _chunks(ids):
                for found in wanted.take(await self._arun(self._tuples_ops(thread_id, ns, chunk))):
                    yield found
                if wanted.full:
                    return

    # -- delete, copy, prune -------------------------------------------------------------

    def _delete_thread_ops(self, thread_id: str) -> Ops[None]:
        self._deltas.forget_thread(thread_id)
        namespaces, runs = yield False, [("SMEMBERS", self.keys.namespaces(thread_id)),
                                         ("SMEMBERS", self.keys.runs(thread_id))]  # fmt: skip
        all_ns = [ns.decode() for ns in namespaces]
        id_lists = yield False, [("ZRANGE", self.keys.namespace(thread_id, ns).index, 0, -1)
                                 for ns in all_ns]  # fmt: skip
        doomed = [self.keys.namespaces(thread_id), self.keys.runs(thread_id)]
        for ns, ids in zip(all_ns, id_lists, strict=True):
            keys = self.keys.namespace(thread_id, ns)
            doomed += keys.fixed() + [keys.writes(i.decode()) for i in ids]
        commands: builtins.list[Command] = [("SREM", self.keys.legacy_threads, thread_id)]
        for run in (r.decode() for r in runs):
            commands += [("DEL", self.keys.run(thread_id, run)),
                         ("SREM", self.keys.run_threads(run), thread_id)]  # fmt: skip
        yield False, [*commands, ("MULTI",), ("DEL", *doomed), ("EXEC",)]

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, value and write of a thread."""
        self._run(self._delete_thread_ops(thread_id))

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, value and write of a thread."""
        await self._arun(self._delete_thread_ops(thread_id))

    def _drop_checkpoints_ops(self, thread_id: str, ns: str, ids: builtins.list[str]) -> Ops[None]:
        """Delete some checkpoints of a namespace and the values no checkpoint reads any more."""
        keys = self.keys.namespace(thread_id, ns)
        if ids:
            yield True, [
                ("ZREM", keys.index, *ids),
                *[("HDEL", key, *ids) for key in (keys.checkpoints, keys.metadata,
                                                  keys.parents, keys.versions)],
                ("DEL", *[keys.writes(i) for i in ids]),
            ]  # fmt: skip
        reads, stored, deltas = yield False, [("HVALS", keys.versions), ("HKEYS", keys.blobs),
                                              ("HGETALL", keys.deltas)]  # fmt: skip
        bases = _pairs(deltas)
        # A surviving checkpoint needs its values and every piece their deltas build on.
        needed = needed_with_bases({f.encode() for r in reads for f in json.loads(r)}, bases)
        unused = [f for f in stored if f not in needed]
        unused_deltas = [f for f in bases if f not in needed]
        commands: builtins.list[Command] = [("HDEL", keys.blobs, *unused)] if unused else []
        if unused_deltas:
            commands.append(("HDEL", keys.deltas, *unused_deltas))
        if commands:
            yield True, commands

    def _delete_for_runs_ops(self, run_ids: Sequence[str]) -> Ops[None]:
        for run_id in run_ids:
            [threads] = yield False, [("SMEMBERS", self.keys.run_threads(run_id))]
            for thread_id in sorted(t.decode() for t in threads):
                run_key = self.keys.run(thread_id, run_id)
                [entries] = yield False, [("SMEMBERS", run_key)]
                by_ns: dict[str, builtins.list[str]] = {}
                for entry in entries:
                    ns, _, checkpoint_id = entry.decode().rpartition(SEP)
                    by_ns.setdefault(ns, []).append(checkpoint_id)
                for ns, ids in by_ns.items():
                    yield from self._drop_checkpoints_ops(thread_id, ns, ids)
                yield False, [("DEL", run_key), ("SREM", self.keys.runs(thread_id), run_id)]
            yield False, [("DEL", self.keys.run_threads(run_id))]

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) that the given runs wrote."""
        self._run(self._delete_for_runs_ops(run_ids))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) that the given runs wrote."""
        await self._arun(self._delete_for_runs_ops(run_ids))

    def _copy_thread_ops(self, source: str, target: str) -> Ops[None]:
        namespaces, runs = yield False, [("SMEMBERS", self.keys.namespaces(source)),
                                         ("SMEMBERS", self.keys.runs(source))]  # fmt: skip
        all_ns = sorted(ns.decode() for ns in namespaces)
        id_lists = yield False, [("ZRANGE", self.keys.namespace(source, ns).index, 0, -1)
                                 for ns in all_ns]  # fmt: skip
        keys = self.keys
        pairs: builtins.list[tuple[str, str]] = [
            (keys.namespaces(source), keys.namespaces(target)),
            (keys.runs(source), keys.runs(target)),
        ]
        pairs += [
            (self.keys.run(source, r.decode()), self.keys.run(target, r.decode())) for r in runs
        ]
        for ns, ids in zip(all_ns, id_lists, strict=True):
            from_keys, to_keys = self.keys.namespace(source, ns), self.keys.namespace(target, ns)
            pairs += list(zip(from_keys.fixed(), to_keys.fixed(), strict=True))
            pairs += [(from_keys.writes(i.decode()), to_keys.writes(i.decode())) for i in ids]
        # DUMP/RESTORE copies any key type whole; COPY would need Redis 6.2 on both ends too,
        # but DUMP/RESTORE also works across the cluster slots of two threads.
        dumps = yield False, [("DUMP", key) for key, _ in pairs]
        restores: builtins.list[Command] = [
            ("RESTORE", to, self.ttl_ms, blob, "REPLACE")
            for (_, to), blob in zip(pairs, dumps, strict=True)
            if blob
        ]
        globals_: builtins.list[Command] = []
        for run in (r.decode() for r in runs):
            globals_ += [("SADD", self.keys.run_threads(run), target),
                         *self._ttl([self.keys.run_threads(run)])]  # fmt: skip
        if restores or globals_:
            yield False, [*globals_, *restores]

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, value and write of one thread to another."""
        self._run(self._copy_thread_ops(source_thread_id, target_thread_id))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, value and write of one thread to another."""
        await self._arun(self._copy_thread_ops(source_thread_id, target_thread_id))

    def _prune_ops(self, thread_ids: Sequence[str], strategy: str) -> Ops[None]:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use keep_latest or delete")
        for thread_id in thread_ids:
            if strategy == "delete":
                yield from self._delete_thread_ops(thread_id)
                continue
            [namespaces] = yield False, [("SMEMBERS", self.keys.namespaces(thread_id))]
            for ns in sorted(n.decode() for n in namespaces):
                [ids] = yield False, [("ZRANGE", self.keys.namespace(thread_id, ns).index, 0, -1)]
                yield from self._drop_checkpoints_ops(thread_id, ns, [i.decode() for i in ids[:-1]])

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`keep_latest`: keep each namespace's newest checkpoint; `delete`: delete all."""
        self._run(self._prune_ops(thread_ids, strategy))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`keep_latest`: keep each namespace's newest checkpoint; `delete`: delete all."""
        await self._arun(self._prune_ops(thread_ids, strategy))

    # -- values --------------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Zero-padded counter plus a random tail, so versions sort as strings."""
        number = 0 if current is None else int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    def _dump(self, value: Any) -> bytes:
        kind, data = self.serde.dumps_typed(value)
        return kind.encode() + b"\x00" + data

    def _load(self, raw: bytes) -> Any:
        kind, _, data = raw.partition(b"\x00")
        return self.serde.loads_typed((kind.decode(), data))

    def _load_blobs(self, chains: dict[bytes, builtins.list[bytes]]) -> dict[str, Any]:
        """Channel values from their stored chains (newest piece first)."""
        values: dict[str, Any] = {}
        for field, chain in chains.items():
            if chain[0] != EMPTY:
                values[field.decode().split(SEP, 1)[0]] = self._load_chain(chain)
        return values

    def _load_chain(self, chain: builtins.list[bytes]) -> Any:
        if len(chain) == 1:
            return self._load(chain[0])
        value = builtins.list(self._load(chain[-1]))
        for delta in reversed(chain[:-1]):
            value += self._load(delta[len(DELTA_MARK) :])
        return value

    def _pack_write(self, task_id: str, channel: str, value: Any, task_path: str) -> bytes:
        kind, data = self.serde.dumps_typed(value)
        return json.dumps([task_id, channel, kind, task_path]).encode() + b"\x00" + data

    def _writes(self, stored: dict[bytes, bytes]) -> builtins.list[PendingWrite]:
        unpacked = []
        for field, raw in stored.items():
            header, _, data = raw.partition(b"\x00")
            task_id, channel, kind, task_path = json.loads(header)
            idx = int(field.decode().rsplit(SEP, 1)[1])
            value = self.serde.loads_typed((kind, data))
            unpacked.append((writes_sort_key(task_path, task_id, idx), (task_id, channel, value)))
        return [write for _, write in sorted(unpacked, key=lambda item: item[0])]

    def _tuple(
        self, thread_id: str, ns: str, checkpoint_id: str, checkpoint: bytes, metadata: bytes,
        parent: bytes | None, values: dict[str, Any], writes: dict[bytes, bytes],
    ) -> CheckpointTuple:  # fmt: skip
        parent_id = parent.decode() if parent else ""
        return CheckpointTuple(
            config=_config(thread_id, ns, checkpoint_id),
            checkpoint=self._checkpoint(checkpoint, values),
            metadata=self._load(metadata),
            parent_config=_config(thread_id, ns, parent_id) if parent_id else None,
            pending_writes=self._writes(writes),
        )

    def _checkpoint(self, raw: bytes, values: dict[str, Any]) -> Checkpoint:
        checkpoint: Checkpoint = self._load(raw)
        checkpoint["channel_values"] = values
        return checkpoint

    def close(self) -> None:
        """Close the connections of both drivers."""
        self._wire.close()
        self._async_wire.close()


def _text(reply: Any) -> str:
    """A status reply as text (RESP3 and RESP2 drivers give it differently)."""
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _pairs(reply: list[Any] | dict[bytes, bytes]) -> dict[bytes, bytes]:
    """An HGETALL reply as a dict, in RESP3 (a map: the sync driver's connections, opened by
    redis-py) or RESP2 (field, value, ...: the async driver's)."""
    return reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))


def _chain(
    field: bytes, blobs: dict[bytes, bytes], bases: dict[bytes, bytes]
) -> list[bytes] | None:
    """The stored pieces of one value, newest first; None when one of them is missing."""
    chain: list[bytes] = []
    current: bytes | None = field
    while current is not None and len(chain) <= len(bases):
        raw = blobs.get(current)
        if raw is None:
            return None
        chain.append(raw)
        current = bases.get(current)
    return chain if current is None else None


def _blob_field(channel: str, version: Any) -> str:
    return f"{channel}{SEP}{version}"


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                             "checkpoint_id": checkpoint_id}}  # fmt: skip


class _Selection:
    """What `list` still wants: tuples whose metadata matches, up to `limit` of them."""

    def __init__(self, metadata: dict[str, Any] | None, limit: int | None) -> None:
        self.metadata = metadata or {}
        self.limit = limit
        self.taken = 0
        # Without a filter every stored checkpoint counts, so the index lookup can page.
        self.page = None if metadata else limit

    @property
    def full(self) -> bool:
        """True once `limit` tuples were taken."""
        return self.limit is not None and self.taken >= self.limit

    def take(self, found: list[CheckpointTuple]) -> list[CheckpointTuple]:
        """The matching tuples of `found`, without passing the limit."""
        chosen = []
        for item in found:
            if self.full:
                break
            if all(item.metadata.get(k) == v for k, v in self.metadata.items()):
                chosen.append(item)
                self.taken += 1
        return chosen


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), LIST_CHUNK):
        yield ids[start : start + LIST_CHUNK]
