"""Test doubles for ports (unit tests only; integration tests use the real adapters)."""

from __future__ import annotations

from graphrelay.bridge.records import TaskRecord


class RecordingDispatcher:
    """A TaskDispatchPort that remembers what it was asked to publish."""

    def __init__(self) -> None:
        self.dispatched: list[TaskRecord] = []
        self.revoked: list[str] = []

    def dispatch(self, record: TaskRecord, callback_url: str | None) -> None:
        self.dispatched.append(record)

    def revoke(self, task_id: str) -> None:
        self.revoked.append(task_id)
