"""Test doubles for ports (unit tests only; integration tests use the real adapters)."""

from __future__ import annotations

from graphrelay.bridge.calls import CallRecord


class RecordingDispatcher:
    """A Dispatcher that remembers what it was asked to publish."""

    def __init__(self) -> None:
        self.dispatched: list[CallRecord] = []
        self.revoked: list[str] = []

    def dispatch(self, record: CallRecord, callback_url: str | None) -> None:
        self.dispatched.append(record)

    def revoke(self, task_id: str) -> None:
        self.revoked.append(task_id)
