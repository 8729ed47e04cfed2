"""The ledger's transitions, shared by every adapter that can apply one atomically."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from graphrelay.bridge.records import (
    TaskRecord,
    TaskStatus,
    Transition,
    count_attempt,
    count_first_attempt,
    to_applied,
    to_dispatched,
    to_finished,
)


class TransitionLedger(ABC):
    """Implements the Ledger transitions on top of one atomic read-modify-write."""

    @abstractmethod
    def _update(self, task_id: str, change: Transition) -> TaskRecord | None:
        """Apply `change` atomically; the changed record, or None if nothing changed."""

    def mark_dispatched(self, task_id: str) -> None:
        """INTENDED → DISPATCHED (no-op from any other state)."""
        self._update(task_id, to_dispatched)

    def start_attempt(self, task_id: str, first_only: bool = False) -> int:
        """Count one more execution by a worker; the new count, 0 if nothing was counted.

        With `first_only` nothing is counted when an execution already started.
        """
        record = self._update(task_id, count_first_attempt if first_only else count_attempt)
        return record.attempts if record else 0

    def finish(
        self, task_id: str, status: TaskStatus, result: Any = None, error: str | None = None
    ) -> bool:
        """Store the outcome if none is stored yet (first write wins); True if this one won."""
        changed = self._update(task_id, lambda record: to_finished(record, status, result, error))
        return changed is not None

    def mark_applied(self, task_ids: Iterable[str]) -> None:
        """COMPLETED | FAILED → APPLIED once the thread has taken the outcome in."""
        for task_id in task_ids:
            self._update(task_id, to_applied)
