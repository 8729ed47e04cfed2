"""The ledger on plain Redis (no modules): the production adapter.

A record is one JSON string. Sorted sets index it so nothing scans the keyspace: per thread
(by creation), per status the sweeper repairs (by last change) and, while the call is open, by
deadline. Every write is an optimistic WATCH/MULTI/EXEC transaction that re-reads and retries
when another process changed the record in between, so first write wins and a record and its
index entries always change together.
"""

from __future__ import annotations

import time

import redis

from graphrelay.bridge.ledger_base import TransitionLedger
from graphrelay.bridge.records import (
    OPEN_STATUSES,
    SWEPT_STATUSES,
    TaskRecord,
    TaskStatus,
    Transition,
)
from graphrelay.redis_clients import sync_client


class RedisLedger(TransitionLedger):
    """Ledger adapter over a Redis database; keys start with `prefix`."""

    def __init__(self, url: str, prefix: str = "graphrelay") -> None:
        self.redis: redis.Redis = sync_client(url, decode_responses=True)
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

    def intend(self, record: TaskRecord) -> TaskRecord:
        """Store `record` as INTENDED unless its key exists; return the stored record."""
        key = self._task_key(record.task_id)
        stored: TaskRecord | None = None

        def attempt(pipe: redis.client.Pipeline) -> None:
            nonlocal stored
            doc: str | None = pipe.get(key)  # type: ignore[assignment]  # WATCHed: immediate
            stored = TaskRecord.model_validate_json(doc) if doc else None
            if stored is not None:
                return
            pipe.multi()
            pipe.set(key, record.model_dump_json())
            pipe.zadd(self._thread_key(record.thread_id), {record.task_id: record.created_at})
            self._index(pipe, None, record)

        self.redis.transaction(attempt, key)
        return stored or record

    def get(self, task_id: str) -> TaskRecord | None:
        """The record for `task_id`, or None."""
        doc = self.redis.get(self._task_key(task_id))
        return TaskRecord.model_validate_json(doc) if doc else None

    def _update(self, task_id: str, change: Transition) -> TaskRecord | None:
        """Apply `change` atomically; the changed record, or None if nothing changed."""
        key = self._task_key(task_id)
        changed: TaskRecord | None = None

        def attempt(pipe: redis.client.Pipeline) -> None:
            nonlocal changed
            changed = None
            doc: str | None = pipe.get(key)  # type: ignore[assignment]  # WATCHed: immediate
            record = TaskRecord.model_validate_json(doc) if doc else None
            if record is None:
                return
            before = record.status
            if not change(record):
                return
            record.updated_at = time.time()
            pipe.multi()
            pipe.set(key, record.model_dump_json())
            self._index(pipe, before, record)
            changed = record

        self.redis.transaction(attempt, key)
        return changed

    def _index(
        self, pipe: redis.client.Pipeline, before: TaskStatus | None, record: TaskRecord
    ) -> None:
        """Move the record between the status and deadline indexes (inside MULTI)."""
        if before is not None and before != record.status and before in SWEPT_STATUSES:
            pipe.zrem(self._status_key(before), record.task_id)
        if record.status in SWEPT_STATUSES:
            pipe.zadd(self._status_key(record.status), {record.task_id: record.updated_at})
        if record.status in OPEN_STATUSES and record.deadline is not None:
            pipe.zadd(self._deadline_key, {record.task_id: record.deadline})
        else:
            pipe.zrem(self._deadline_key, record.task_id)

    def for_thread(self, thread_id: str) -> list[TaskRecord]:
        """Every record of one thread, oldest first."""
        task_ids: list[str] = self.redis.zrange(self._thread_key(thread_id), 0, -1)  # type: ignore[assignment]
        return self._records(task_ids)

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
        """Release the connection pool."""
        self.redis.close()
