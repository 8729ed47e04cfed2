"""The ledger on plain Redis (no modules): the production adapter.

A record is one JSON string; a per-thread sorted set indexes a thread's records so nothing
scans the keyspace. Every transition is an optimistic WATCH/MULTI/EXEC transaction that
re-reads and retries when another process changed the record in between, so first write wins.
"""

from __future__ import annotations

import time

import redis

from graphrelay.bridge.ledger_base import TransitionLedger
from graphrelay.bridge.records import (
    TaskRecord,
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

    def intend(self, record: TaskRecord) -> TaskRecord:
        """Store `record` as INTENDED unless its key exists; return the stored record."""
        key = self._task_key(record.task_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, record.model_dump_json(), nx=True)
            pipe.zadd(self._thread_key(record.thread_id), {record.task_id: record.created_at})
            created, _ = pipe.execute()
        if created:
            return record
        stored = self.get(record.task_id)
        assert stored is not None, "a record set with NX cannot vanish"
        return stored

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
            if record is None or not change(record):
                return
            record.updated_at = time.time()
            pipe.multi()
            pipe.set(key, record.model_dump_json())
            changed = record

        self.redis.transaction(attempt, key)
        return changed

    def for_thread(self, thread_id: str) -> list[TaskRecord]:
        """Every record of one thread, oldest first."""
        task_ids: list[str] = self.redis.zrange(self._thread_key(thread_id), 0, -1)  # type: ignore[assignment]
        if not task_ids:
            return []
        docs = self.redis.mget([self._task_key(task_id) for task_id in task_ids])
        return [TaskRecord.model_validate_json(doc) for doc in docs if doc]

    def close(self) -> None:
        """Release the connection pool."""
        self.redis.close()
