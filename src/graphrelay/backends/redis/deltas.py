"""Append-only list channels stored as deltas against the version written before.

A message history kept in an `Annotated[list, operator.add]` channel gets a new version every
step that is the previous list plus a few items. Storing each version whole costs O(S²) bytes
over S steps; storing only the appended items costs O(S). This module decides, per put, whether
a channel's new value extends the value this process last wrote for the same (thread,
namespace, channel), and which items are new.

The check is by identity: every item of the last written list must be the very object at the
same index of the new list. LangGraph's reducers (`operator.add`, `add_messages`) build a new
list that holds the old items, so a history qualifies; a value that was deserialized (a thread
resumed in another process) or rebuilt does not, and is written whole. Like every checkpointer,
this assumes a node does not mutate a checkpointed item in place.

Reads follow a chain back to a whole value (a snapshot). A snapshot is written at least every
`snapshot_every` versions, so a read concatenates at most that many pieces.
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

# A delta is stored as this byte followed by the serialized new items (which delta builds on
# what is kept in a separate hash); the mark makes deltas plain to see in redis-cli.
DELTA_MARK = b"+"

ChannelKey = tuple[str, str, str]  # (thread id, namespace, channel)


@dataclass(frozen=True)
class Written:
    """What this process last wrote for one channel: the field, its items, the chain depth."""

    field: str
    items: tuple[Any, ...]
    depth: int  # deltas between this version and its snapshot (0: it is a snapshot)


@dataclass(frozen=True)
class Delta:
    """A new version written as the items appended to `base`."""

    base: Written
    appended: list[Any]


class DeltaTracker:
    """The last written list per channel, in a bounded LRU, to plan deltas against.

    The cache holds references to the items of at most `capacity` channels; a channel that
    fell out of it just gets a snapshot on its next write.
    """

    def __init__(self, snapshot_every: int, capacity: int) -> None:
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be at least 1, got {snapshot_every}")
        self.snapshot_every = snapshot_every
        self.capacity = capacity
        self._last: OrderedDict[ChannelKey, Written] = OrderedDict()
        self._lock = threading.Lock()

    def plan(self, key: ChannelKey, value: Any) -> Delta | None:
        """A delta when `value` extends the last written list and the chain may grow."""
        if type(value) is not list or self.snapshot_every < 2:
            return None
        with self._lock:
            last = self._last.get(key)
        if last is None or last.depth + 1 >= self.snapshot_every:
            return None
        size = len(last.items)
        if len(value) < size or not all(map(operator.is_, last.items, value)):
            return None
        return Delta(last, value[size:])

    def record(self, key: ChannelKey, field: str, value: Any, depth: int) -> None:
        """Remember what was written (only lists can be extended later)."""
        with self._lock:
            if type(value) is not list or self.snapshot_every < 2:
                self._last.pop(key, None)
                return
            self._last[key] = Written(field, tuple(value), depth)
            self._last.move_to_end(key)
            while len(self._last) > self.capacity:
                self._last.popitem(last=False)

    def forget_thread(self, thread_id: str) -> None:
        """Drop every entry of a thread (it was deleted)."""
        with self._lock:
            for key in [key for key in self._last if key[0] == thread_id]:
                del self._last[key]


def needed_with_bases(needed: set[bytes], bases: dict[bytes, bytes]) -> set[bytes]:
    """`needed` plus every field a delta among them builds on, transitively."""
    closed = set(needed)
    for field in needed:
        while field in bases and bases[field] not in closed:
            field = bases[field]
            closed.add(field)
    return closed
