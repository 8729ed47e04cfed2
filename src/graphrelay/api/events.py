"""Live events of runs, fanned out to the clients streaming them (in this process)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

Event = tuple[str, Any]  # (SSE event name, JSON-able data)
END = "end"


def thread_channel(thread_id: str) -> str:
    """The channel of everything that happens on a thread (its runs and its tasks' progress)."""
    return f"thread:{thread_id}"


class RunEvents:
    """Per-run fan-out: each subscriber gets every event published after it subscribed."""

    def __init__(self) -> None:
        self._queues: defaultdict[str, list[asyncio.Queue[Event]]] = defaultdict(list)

    def subscribe(self, run_id: str) -> asyncio.Queue[Event]:
        """A queue that will receive the run's events, ending with an `end` event."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._queues[run_id].append(queue)
        return queue

    def unsubscribe(self, run_id: str, queue: asyncio.Queue[Event]) -> None:
        """Stop delivering to `queue`."""
        queues = self._queues.get(run_id, [])
        if queue in queues:
            queues.remove(queue)
        if not queues:
            self._queues.pop(run_id, None)

    def wanted(self, run_id: str) -> bool:
        """True while someone streams the run."""
        return bool(self._queues.get(run_id))

    def publish(self, run_id: str, event: str, data: Any) -> None:
        """Deliver one event to every subscriber of the run."""
        for queue in self._queues.get(run_id, []):
            queue.put_nowait((event, data))

    def finish(self, run_id: str, status: str) -> None:
        """Deliver the `end` event; subscribers then stop."""
        self.publish(run_id, END, {"run_id": run_id, "status": status})
