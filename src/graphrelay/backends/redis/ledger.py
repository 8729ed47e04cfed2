"""The ledger's store on plain Redis (no modules): the production adapter.

A record is one JSON string. Sorted sets index it so nothing scans the keyspace: per thread
(by creation), per status the sweeper repairs (by last change) and, while the call is open, by
deadline.

Every write is a compare-and-set Lua call: the record is changed in Python from the version
read, and the script stores it, with its index changes, only if the stored version is still
the one read; otherwise it answers the stored version and the change is applied to that. So
first write wins, a record and its index entries always change together, and no write needs
connection state (WATCH): the same operations run on redis-py for threads and workers and on
`AsyncWire` for the API's event loop (written once, as generators of commands).
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from graphrelay.backends.redis.clients import sync_client, text
from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.redis.wire import AsyncWire, ClientWire, Command, Ops, arun_ops, run_ops
from graphrelay.bridge.calls import (
    OPEN_STATUSES,
    SWEPT_STATUSES,
    CallRecord,
    CallStatus,
    Transition,
)

T = TypeVar("T")

# KEYS[1]: the record. ARGV[1]: the version read ("" when there was none), ARGV[2]: the new
# version, ARGV[3..]: index commands, each as its length and then its words. 1 if stored, else
# the stored version (false when there is none). Finding the new version stored already also
# answers 1: that is this very write, retried after a dropped connection lost its reply (a
# version carries the time it was made, so no other writer makes the same one).
_SET_IF_UNCHANGED_LUA = """
local stored = redis.call("GET", KEYS[1])
if stored == ARGV[2] then return 1 end
if (stored or "") ~= ARGV[1] then return stored end
redis.call("SET", KEYS[1], ARGV[2])
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
"""


class RedisLedger:
    """`LedgerStore` on a Redis database; key names from `RedisKeys`."""

    def __init__(self, url: str, keys: RedisKeys) -> None:
        # Workers and the sweeper go through redis-py, which reconnects and retries through a
        # Redis restart; the API's event loop through the pipelined `AsyncWire`.
        self.client = sync_client(url, decode_responses=True)
        self._sync = ClientWire(self.client)
        self._wire = AsyncWire(url)
        self.keys = keys

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
                read or "", record.model_dump_json(), *words)  # fmt: skip

    def _index(self, before: CallStatus | None, record: CallRecord) -> list[Command]:
        """Move the record between the status and deadline indexes."""
        keys, task_id = self.keys, record.task_id
        commands: list[Command] = []
        if before is not None and before != record.status and before in SWEPT_STATUSES:
            commands.append(("ZREM", keys.tasks_by_status(before), task_id))
        if record.status in SWEPT_STATUSES:
            commands.append(("ZADD", keys.tasks_by_status(record.status), record.updated_at,
                             task_id))  # fmt: skip
        if record.status in OPEN_STATUSES and record.deadline is not None:
            commands.append(("ZADD", keys.tasks_by_deadline, record.deadline, task_id))
        else:
            commands.append(("ZREM", keys.tasks_by_deadline, task_id))
        return commands

    def _for_thread_ops(self, thread_id: str) -> Ops[list[CallRecord]]:
        [task_ids] = yield False, [("ZRANGE", self.keys.thread_tasks(thread_id), 0, -1)]
        return (yield from self._records_ops(task_ids))

    def _records_ops(self, task_ids: list[Any]) -> Ops[list[CallRecord]]:
        if not task_ids:
            return []
        [docs] = yield False, [("MGET", *[self.keys.task(text(task_id)) for task_id in task_ids])]
        return [CallRecord.model_validate_json(doc) for doc in docs if doc]

    def _by_score_ops(self, key: str, upto: float, limit: int) -> Ops[list[CallRecord]]:
        [task_ids] = yield False, [("ZRANGEBYSCORE", key, "-inf", upto, "LIMIT", 0, limit)]
        return (yield from self._records_ops(task_ids))

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

    def close(self) -> None:
        """Release the connections."""
        self._sync.close()
        self._wire.close()
