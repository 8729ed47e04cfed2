"""The ledger on plain Redis (no modules): the production adapter.

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
from collections.abc import Generator
from typing import Any, TypeVar

import redis

from graphrelay.async_wire import AsyncWire
from graphrelay.bridge.ledger_base import TransitionLedger
from graphrelay.bridge.records import (
    OPEN_STATUSES,
    SWEPT_STATUSES,
    TaskRecord,
    TaskStatus,
    Transition,
)
from graphrelay.redis_clients import sync_client, text
from graphrelay.state.wire import Command

T = TypeVar("T")
# Yields one command, is sent its reply, returns the result.
Ops = Generator[Command, Any, T]

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


class RedisLedger(TransitionLedger):
    """Ledger adapter over a Redis database; keys start with `prefix`."""

    def __init__(self, url: str, prefix: str = "graphrelay") -> None:
        self.redis: redis.Redis = sync_client(url, decode_responses=True)
        self._wire = AsyncWire(url)
        self.prefix = prefix

    def _task_key(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}"

    def _thread_key(self, thread_id: str) -> str:
        return f"{self.prefix}:thread-tasks:{thread_id}"

    def _status_key(self, status: TaskStatus) -> str:
        return f"{self.prefix}:tasks-by-status:{status}"

    @property
    def _deadline_key(self) -> str:
        return f"{self.prefix}:tasks-by-deadline"

    # -- drivers -------------------------------------------------------------------------

    def _run(self, ops: Ops[T]) -> T:
        try:
            command = next(ops)
            while True:
                command = ops.send(self.redis.execute_command(*command))  # type: ignore[no-untyped-call]
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _arun(self, ops: Ops[T]) -> T:
        try:
            command = next(ops)
            while True:
                command = ops.send(await self._wire.call(*command))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    # -- operations ----------------------------------------------------------------------

    def _intend_ops(self, record: TaskRecord) -> Ops[TaskRecord]:
        index = [("ZADD", self._thread_key(record.thread_id), record.created_at, record.task_id),
                 *self._index(None, record)]  # fmt: skip
        stored = yield self._set_if_unchanged(record, None, index)
        return record if stored == 1 else TaskRecord.model_validate_json(stored)

    def _get_ops(self, task_id: str) -> Ops[TaskRecord | None]:
        doc = yield ("GET", self._task_key(task_id))
        return TaskRecord.model_validate_json(doc) if doc else None

    def _update_ops(self, task_id: str, change: Transition) -> Ops[TaskRecord | None]:
        doc = yield ("GET", self._task_key(task_id))
        while doc:
            record = TaskRecord.model_validate_json(doc)
            before = record.status
            if not change(record):
                return None
            record.updated_at = time.time()
            stored = yield self._set_if_unchanged(record, doc, self._index(before, record))
            if stored == 1:
                return record
            doc = stored  # changed meanwhile: apply the change to what is stored now
        return None

    def _set_if_unchanged(
        self, record: TaskRecord, read: str | bytes | None, index: list[Command]
    ) -> Command:
        words = [word for command in index for word in (len(command), *command)]
        return ("EVAL", _SET_IF_UNCHANGED_LUA, 1, self._task_key(record.task_id),
                read or "", record.model_dump_json(), *words)  # fmt: skip

    def _index(self, before: TaskStatus | None, record: TaskRecord) -> list[Command]:
        """Move the record between the status and deadline indexes."""
        commands: list[Command] = []
        if before is not None and before != record.status and before in SWEPT_STATUSES:
            commands.append(("ZREM", self._status_key(before), record.task_id))
        if record.status in SWEPT_STATUSES:
            commands.append(("ZADD", self._status_key(record.status), record.updated_at,
                             record.task_id))  # fmt: skip
        if record.status in OPEN_STATUSES and record.deadline is not None:
            commands.append(("ZADD", self._deadline_key, record.deadline, record.task_id))
        else:
            commands.append(("ZREM", self._deadline_key, record.task_id))
        return commands

    # -- the ledger, sync and async --------------------------------------------------------

    def intend(self, record: TaskRecord) -> TaskRecord:
        """Store `record` as INTENDED unless its key exists; return the stored record."""
        return self._run(self._intend_ops(record))

    async def aintend(self, record: TaskRecord) -> TaskRecord:
        """`intend` from the event loop."""
        return await self._arun(self._intend_ops(record))

    def get(self, task_id: str) -> TaskRecord | None:
        """The record for `task_id`, or None."""
        return self._run(self._get_ops(task_id))

    async def aget(self, task_id: str) -> TaskRecord | None:
        """`get` from the event loop."""
        return await self._arun(self._get_ops(task_id))

    def _update(self, task_id: str, change: Transition) -> TaskRecord | None:
        """Apply `change` atomically; the changed record, or None if nothing changed."""
        return self._run(self._update_ops(task_id, change))

    async def _aupdate(self, task_id: str, change: Transition) -> TaskRecord | None:
        return await self._arun(self._update_ops(task_id, change))

    def for_thread(self, thread_id: str) -> list[TaskRecord]:
        """Every record of one thread, oldest first."""
        return self._run(self._for_thread_ops(thread_id))

    async def afor_thread(self, thread_id: str) -> list[TaskRecord]:
        """`for_thread` from the event loop."""
        return await self._arun(self._for_thread_ops(thread_id))

    def _for_thread_ops(self, thread_id: str) -> Ops[list[TaskRecord]]:
        task_ids = yield ("ZRANGE", self._thread_key(thread_id), 0, -1)
        if not task_ids:
            return []
        docs = yield ("MGET", *[self._task_key(text(task_id)) for task_id in task_ids])
        return [TaskRecord.model_validate_json(doc) for doc in docs if doc]

    def stale(self, status: TaskStatus, updated_before: float, limit: int) -> list[TaskRecord]:
        """Up to `limit` records in `status` unchanged since `updated_before`, oldest first."""
        if status not in SWEPT_STATUSES:
            raise ValueError(f"{status} records are not indexed; use one of {SWEPT_STATUSES}")
        task_ids: list[str] = self.redis.zrangebyscore(  # type: ignore[assignment]
            self._status_key(status), "-inf", updated_before, start=0, num=limit
        )
        return [record for record in self._records(task_ids) if record.status == status]

    def overdue(self, now: float, limit: int) -> list[TaskRecord]:
        """Up to `limit` INTENDED or DISPATCHED records whose deadline is before `now`."""
        task_ids: list[str] = self.redis.zrangebyscore(  # type: ignore[assignment]
            self._deadline_key, "-inf", now, start=0, num=limit
        )
        return [record for record in self._records(task_ids) if record.status in OPEN_STATUSES]

    def _records(self, task_ids: list[str]) -> list[TaskRecord]:
        if not task_ids:
            return []
        docs = self.redis.mget([self._task_key(task_id) for task_id in task_ids])
        return [TaskRecord.model_validate_json(doc) for doc in docs if doc]

    def close(self) -> None:
        """Release the connections."""
        self.redis.close()
        self._wire.close()
