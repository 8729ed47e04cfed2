"""In-process thread locks and run events: the embedded profile, whose single API process
needs nothing shared."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import weakref
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from graphrelay.server.ports import StopHandler
from graphrelay.server.streaming import KEEP_MAX, KEEP_SECONDS, Event, end_event, put_first


class LocalThreadLocks:
    """asyncio locks in one process: enough for the embedded profile's single API process."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        """Wait for the thread's lock and hold it for the block."""
        lock = self._locks.get(thread_id)
        if lock is None:
            lock = self._locks[thread_id] = asyncio.Lock()
        async with lock:
            yield


class LocalEvents:
    """RunEvents within one process."""

    def __init__(self) -> None:
        self._queues: defaultdict[str, list[asyncio.Queue[Event]]] = defaultdict(list)
        self._kept: dict[str, deque[Event]] = {}
        # Ids are `START_MS-N`, as Redis writes them: those of a restarted process sort after
        # the ones a client kept from before, so its live events are not taken for replays.
        self._id_prefix = f"{time.time_ns() // 1_000_000}-"
        self._ids = itertools.count(1)
        self.on_stop: StopHandler | None = None

    async def start(self) -> None:
        """Nothing to connect."""

    async def subscribe(self, channel: str, after: str | None = None) -> asyncio.Queue[Event]:
        """A queue that receives the channel's events from now on; with `after`, first the
        channel's kept events after that id."""
        queue = self._add(channel)
        if after is not None:
            put_first(queue, self._kept.get(channel, ()), after)
        return queue

    def _add(self, channel: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._queues[channel].append(queue)
        return queue

    def unsubscribe(self, channel: str, queue: asyncio.Queue[Event]) -> None:
        """Stop delivering to `queue`."""
        queues = self._queues.get(channel, [])
        if queue in queues:
            queues.remove(queue)
        if not queues:
            self._queues.pop(channel, None)

    def wanted(self, channel: str) -> bool:
        """True while someone in this process streams the channel."""
        return bool(self._queues.get(channel))

    def publish(self, channel: str, event: str, data: Any, *, keep: bool = False) -> None:
        """Deliver one event to every subscriber of the channel (and keep it, with `keep`)."""
        if not keep:
            self._deliver(channel, Event(event, data))
            return
        kept = Event(event, data, f"{self._id_prefix}{next(self._ids)}")
        self._kept.setdefault(channel, deque(maxlen=KEEP_MAX)).append(kept)
        self._deliver(channel, kept)

    def _deliver(self, channel: str, event: Event) -> None:
        for queue in self._queues.get(channel, []):
            queue.put_nowait(event)

    def finish(self, run_id: str, status: str, *, keep: bool = False) -> None:
        """Deliver a run's `end` event; kept events are forgotten `KEEP_SECONDS` later."""
        end = end_event(run_id, status)
        self.publish(run_id, end.name, end.data, keep=keep)
        if keep:
            self._forget_later(run_id)

    def _forget_later(self, channel: str) -> None:
        asyncio.get_running_loop().call_later(KEEP_SECONDS, self._kept.pop, channel, None)

    def request_stop(self, run_id: str) -> None:
        """No other replica: a run not executing here is not executing anywhere."""

    async def forget(self, run_ids: Sequence[str]) -> None:
        """Drop the kept events of these runs."""
        for run_id in run_ids:
            self._kept.pop(run_id, None)

    async def close(self) -> None:
        """Nothing to release."""
