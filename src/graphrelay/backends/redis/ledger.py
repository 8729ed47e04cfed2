"""The ledger's store on plain Redis (no modules): the production adapter.

A record is one JSON string. Sorted sets index it so nothing scans the keyspace: per thread
(by creation), per status the sweeper repairs or an operator looks up (by last change) and,
while the call is open, by deadline.

With a thread TTL, every write gives the record and its thread's index that TTL. The status
and deadline indexes are shared by every thread, so their entries cannot expire one by one: a
status entry's score is the record's last change, so the record has expired once the score is
older than the TTL, and `forget_expired` (every sweeper round) drops such entries, and their
deadline entries, after checking that the record is gone. Reads drop entries whose record
they do not find, and a record no reader can parse.

Every write is a compare-and-set Lua call: the record is changed in Python from the version
read, and the script stores it, with its index changes, only if the stored version is still
the one read; otherwise it answers the stored version and the change is applied to that. So
first write wins, a record and its index entries always change together, and no write needs
connection state (WATCH): the same operations run on redis-py for threads and workers and on
`AsyncWire` for the API's event loop (written once, as generators of commands).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from typing import Any, TypeVar

from graphrelay.backends.redis.clients import sync_client, text
from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.redis.wire import AsyncWire, ClientWire, Command, Ops, arun_ops, run_ops
from graphrelay.bridge.calls import (
    INDEXED_STATUSES,
    OPEN_STATUSES,
    SWEPT_STATUSES,
    CallRecord,
    CallStatus,
    Transition,
)

T = TypeVar("T")
log = logging.getLogger(__name__)
FORGET_BATCH = 1000  # index entries checked per status and call of `forget_expired`

# KEYS[1]: the record. ARGV[1]: the version read ("" when there was none), ARGV[2]: the new
# version, ARGV[3], ARGV[4]: its expiry (`PX` ms, `PXAT` epoch ms, or "" and 0 for none),
# ARGV[5..]: index commands, each as its length and then its words. 1 if stored, else the
# stored version (false when there is none). Finding the new version stored already also
# answers 1: that is this very write, retried after a dropped connection lost its reply (a
# version carries the time it was made, so no other writer makes the same one).
_SET_IF_UNCHANGED_LUA = """
local stored = redis.call("GET", KEYS[1])
if stored == ARGV[2] then return 1 end
if (stored or "") ~= ARGV[1] then return stored end
if ARGV[3] == "" then
  redis.call("SET", KEYS[1], ARGV[2])
else
  redis.call("SET", KEYS[1], ARGV[2], ARGV[3], ARGV[4])
end
local i = 5
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
"""

# Drop the index entries of records that are gone. KEYS: the deadline index, then the status
# indexes. ARGV[1]: what a record key starts with, ARGV[2]: the score below which a status
# entry's record has expired, ARGV[3]: entries checked per index, ARGV[4..]: task ids known
# gone. How many entries were dropped.
_FORGET_LUA = """
local dropped = 0
local function forget(id)
  for k = 2, #KEYS do dropped = dropped + redis.call("ZREM", KEYS[k], id) end
  redis.call("ZREM", KEYS[1], id)
end
for i = 4, #ARGV do forget(ARGV[i]) end
if ARGV[2] ~= "" then
  for k = 2, #KEYS do
    local old = redis.call("ZRANGEBYSCORE", KEYS[k], "-inf", "(" .. ARGV[2], "LIMIT", 0, ARGV[3])
    for _, id in ipairs(old) do
      if redis.call("EXISTS", ARGV[1] .. id) == 0 then forget(id) end
    end
  end
end
return dropped
"""


class RedisLedger:
    """`LedgerStore` on a Redis database; key names from `RedisKeys`."""

    def __init__(self, url: str, keys: RedisKeys, ttl_seconds: float | None = None) -> None:
        """`ttl_seconds`: the thread TTL; a record expires that long after its last change
        (None: records stay until their thread is deleted)."""
        # Workers and the sweeper go through redis-py, which reconnects and retries through a
        # Redis restart; the API's event loop through the pipelined `AsyncWire`.
        self.client = sync_client(url, decode_responses=True)
        self._sync = ClientWire(self.client)
        self._wire = AsyncWire(url)
        self.keys = keys
        self.ttl_seconds = ttl_seconds

    def _run(self, ops: Ops[T]) -> T:
        return run_ops(self._sync, ops)

    async def _arun(self, ops: Ops[T]) -> T:
        return await arun_ops(self._wire, ops)

    # -- operations ----------------------------------------------------------------------

    def _intend_ops(self, record: CallRecord) -> Ops[CallRecord]:
        index = [("ZADD", self.keys.thread_tasks(record.thread_id), record.created_at,
                  record.task_id), *self._index(None, record)]  # fmt: skip
        [stored] = yield False, [self._set_if_unchanged(record, None, index)]
        return record if stored == 1 else CallRecord.model_validate_json(stored)

    def _get_ops(self, task_id: str) -> Ops[CallRecord | None]:
        [doc] = yield False, [("GET", self.keys.task(task_id))]
        return CallRecord.model_validate_json(doc) if doc else None

    def _update_ops(self, task_id: str, change: Transition) -> Ops[CallRecord | None]:
        [doc] = yield False, [("GET", self.keys.task(task_id))]
        while doc:
            record = CallRecord.model_validate_json(doc)
            before = record.status
            if not change(record):
                return None
            record.updated_at = time.time()
            [stored] = yield (
                False,
                [self._set_if_unchanged(record, doc, self._index(before, record))],
            )
            if stored == 1:
                return record
            doc = stored  # changed meanwhile: apply the change to what is stored now
        return None

    def _set_if_unchanged(
        self, record: CallRecord, read: str | bytes | None, index: list[Command]
    ) -> Command:
        words = [word for command in index for word in (len(command), *command)]
        return ("EVAL", _SET_IF_UNCHANGED_LUA, 1, self.keys.task(record.task_id),
                read or "", record.model_dump_json(), *self._expiry(record),
                *words)  # fmt: skip

    def _expiry(self, record: CallRecord) -> tuple[str, int]:
        """SET's expiry option for the record: kept until its `forget_at`, or the TTL."""
        if record.forget_at is not None:
            return "PXAT", int(record.forget_at * 1000)
        if self.ttl_seconds:
            return "PX", int(self.ttl_seconds * 1000)
        return "", 0

    def _index(self, before: CallStatus | None, record: CallRecord) -> list[Command]:
        """Move the record between the status and deadline indexes (and keep its thread's
        index as long as the record)."""
        keys, task_id = self.keys, record.task_id
        commands: list[Command] = []
        if before is not None and before != record.status and before in INDEXED_STATUSES:
            commands.append(("ZREM", keys.tasks_by_status(before), task_id))
        if record.status in INDEXED_STATUSES:
            commands.append(("ZADD", keys.tasks_by_status(record.status), record.updated_at,
                             task_id))  # fmt: skip
        if record.status in OPEN_STATUSES and record.deadline is not None:
            commands.append(("ZADD", keys.tasks_by_deadline, record.deadline, task_id))
        else:
            commands.append(("ZREM", keys.tasks_by_deadline, task_id))
        if self.ttl_seconds:
            ttl_ms = int(self.ttl_seconds * 1000)
            commands.append(("PEXPIRE", keys.thread_tasks(record.thread_id), ttl_ms))
        return commands

    def _for_thread_ops(self, thread_id: str) -> Ops[list[CallRecord]]:
        key = self.keys.thread_tasks(thread_id)
        [task_ids] = yield False, [("ZRANGE", key, 0, -1)]
        return (yield from self._records_ops(task_ids, key))

    def _records_ops(self, task_ids: list[Any], listed_in: str = "") -> Ops[list[CallRecord]]:
        """The records of `task_ids` that exist and parse; the ids of the others are dropped
        from every index (and from `listed_in`), so no such entry takes a reader's place
        again."""
        if not task_ids:
            return []
        ids = [text(task_id) for task_id in task_ids]
        [docs] = yield False, [("MGET", *[self.keys.task(task_id) for task_id in ids])]
        records, gone = [], []
        for task_id, doc in zip(ids, docs, strict=True):
            record = _parsed(task_id, doc)
            if record is None:
                gone.append(task_id)
            else:
                records.append(record)
        if gone:
            unlisted: list[Command] = [("ZREM", listed_in, *gone)] if listed_in else []
            yield False, [self._forget_command("", gone), *unlisted]
        return records

    def _by_score_ops(self, key: str, upto: float, limit: int) -> Ops[list[CallRecord]]:
        [task_ids] = yield False, [("ZRANGEBYSCORE", key, "-inf", upto, "LIMIT", 0, limit)]
        return (yield from self._records_ops(task_ids))

    def _forget_command(self, expired_before: float | str, gone: Collection[str] = ()) -> Command:
        indexes = [self.keys.tasks_by_status(status) for status in INDEXED_STATUSES]
        return ("EVAL", _FORGET_LUA, 1 + len(indexes), self.keys.tasks_by_deadline, *indexes,
                self.keys.task(""), expired_before, FORGET_BATCH, *gone)  # fmt: skip

    def _forget_thread_ops(self, thread_id: str, keep: Collection[str]) -> Ops[None]:
        key = self.keys.thread_tasks(thread_id)
        [task_ids] = yield False, [("ZRANGE", key, 0, -1)]
        ids = [text(task_id) for task_id in task_ids]
        doomed = [self.keys.task(task_id) for task_id in ids if task_id not in keep]
        commands: list[Command] = [("DEL", key, *doomed)]
        if ids:
            commands.append(self._forget_command("", ids))
        yield True, commands

    # -- the store, sync and async ----------------------------------------------------------

    def intend(self, record: CallRecord) -> CallRecord:
        """Store `record` as INTENDED unless its key exists; return the stored record."""
        return self._run(self._intend_ops(record))

    async def aintend(self, record: CallRecord) -> CallRecord:
        """`intend` from the event loop."""
        return await self._arun(self._intend_ops(record))

    def get(self, task_id: str) -> CallRecord | None:
        """The record for `task_id`, or None."""
        return self._run(self._get_ops(task_id))

    async def aget(self, task_id: str) -> CallRecord | None:
        """`get` from the event loop."""
        return await self._arun(self._get_ops(task_id))

    def update(self, task_id: str, change: Transition) -> CallRecord | None:
        """Apply `change` atomically; the changed record, or None if nothing changed."""
        return self._run(self._update_ops(task_id, change))

    async def aupdate(self, task_id: str, change: Transition) -> CallRecord | None:
        """`update` from the event loop."""
        return await self._arun(self._update_ops(task_id, change))

    def for_thread(self, thread_id: str) -> list[CallRecord]:
        """Every record of one thread, oldest first."""
        return self._run(self._for_thread_ops(thread_id))

    async def afor_thread(self, thread_id: str) -> list[CallRecord]:
        """`for_thread` from the event loop."""
        return await self._arun(self._for_thread_ops(thread_id))

    def stale(self, status: CallStatus, updated_before: float, limit: int) -> list[CallRecord]:
        """Up to `limit` records in `status` unchanged since `updated_before`, oldest first."""
        if status not in SWEPT_STATUSES:
            raise ValueError(f"{status} records are not indexed; use one of {SWEPT_STATUSES}")
        found = self._run(self._by_score_ops(self.keys.tasks_by_status(status), updated_before,
                                             limit))  # fmt: skip
        return [record for record in found if record.status == status]

    def overdue(self, now: float, limit: int) -> list[CallRecord]:
        """Up to `limit` INTENDED or DISPATCHED records whose deadline is before `now`."""
        found = self._run(self._by_score_ops(self.keys.tasks_by_deadline, now, limit))
        return [record for record in found if record.status in OPEN_STATUSES]

    def abandoned(self, limit: int) -> list[CallRecord]:
        """Up to `limit` ABANDONED records of live threads (parked), oldest change first."""
        found = self._run(self._by_score_ops(self.keys.tasks_by_status(CallStatus.ABANDONED),
                                             float("inf"), limit))  # fmt: skip
        return [record for record in found if record.status == CallStatus.ABANDONED]

    def forget_thread(self, thread_id: str, keep: Collection[str]) -> None:
        """Remove the thread's records (but `keep`) and every index entry of them, at once."""
        self._run(self._forget_thread_ops(thread_id, keep))

    async def aforget_thread(self, thread_id: str, keep: Collection[str]) -> None:
        """`forget_thread` from the event loop."""
        await self._arun(self._forget_thread_ops(thread_id, keep))

    def forget_expired(self, now: float) -> int:
        """Drop the status and deadline entries of records the TTL removed."""
        if not self.ttl_seconds:
            return 0  # nothing expires: entries leave with their records' changes and deletes
        return self._run(self._count_ops(self._forget_command(now - self.ttl_seconds)))

    @staticmethod
    def _count_ops(command: Command) -> Ops[int]:
        [count] = yield False, [command]
        return int(count)

    def close(self) -> None:
        """Release the connections."""
        self._sync.close()
        self._wire.close()


def _parsed(task_id: str, doc: Any) -> CallRecord | None:
    if not doc:
        return None
    try:
        return CallRecord.model_validate_json(doc)
    except ValueError:
        log.error("ledger record %s cannot be read; dropped from the indexes: %r", task_id, doc)
        return None
