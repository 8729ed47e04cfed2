"""The run engine's ports: where thread and run records, leases, locks and events live, and
the graphs it runs. `backends/` implements them (SQLite, Redis, in-process)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from langgraph.pregel import Pregel

from graphrelay.server.streaming import Event

# A compiled graph whose state, context, input and output types the engine does not know.
Graph = Pregel[Any, Any, Any, Any]
StopHandler = Callable[[str], None]


@dataclass(frozen=True)
class Entry:
    """One document to write: its kind, id, JSON text and the parent it is filed under."""

    kind: str
    doc_id: str
    doc: str
    parent: str = ""


@dataclass(frozen=True)
class Guard:
    """What a conditional write expects to find as it was read: documents by (kind, id), with
    their JSON text or None for missing, and filings by (kind, parent), with the set of ids
    filed there (in any order)."""

    docs: tuple[tuple[str, str, str | None], ...] = ()
    filings: tuple[tuple[str, str, frozenset[str]], ...] = ()


class DocumentStore(Protocol):
    """JSON documents by kind and id, each optionally filed under a parent id.

    An adapter may give documents a lifetime (the thread TTL): a document then expires that
    long after it was last written or touched, and leaves its parent's filing with it.
    """

    async def put(
        self,
        *entries: Entry,
        drop: Sequence[tuple[str, str, str]] = (),
        touch: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        """Insert or replace documents, remove the (kind, id, parent) ones in `drop` and extend
        the lifetime of the (kind, id, parent) ones in `touch` that exist, all or none."""
        ...

    async def put_if(
        self,
        guard: Guard,
        *entries: Entry,
        drop: Sequence[tuple[str, str, str]] = (),
        touch: Sequence[tuple[str, str, str]] = (),
    ) -> bool:
        """`put`, made only if every document and filing in `guard` is still as given, all in
        one atomic step across processes; True if written, False (nothing written) if not.

        A write whose first entry's document already holds exactly that entry's text counts as
        made (True): that is this very write, sent again after a lost reply.
        """
        ...

    async def get(self, *keys: tuple[str, str]) -> list[str | None]:
        """The documents at (kind, id) keys, None where missing."""
        ...

    async def children(self, kind: str, parent: str) -> list[str]:
        """Documents filed under `parent`, oldest first."""
        ...

    async def filed(self, kind: str, parent: str) -> list[str]:
        """Ids of the documents filed under `parent`, oldest first."""
        ...

    async def delete(self, *entries: tuple[str, str, str]) -> None:
        """Remove (kind, id, parent) documents and their filing."""
        ...

    async def forget_expired(self) -> int:
        """Drop filed ids whose documents expired from filings that outlive them; how many."""
        ...


class RunLeases(Protocol):
    """Who executes which run, until when."""

    async def grant(self, run_id: str, owner: str, seconds: float) -> None:
        """Give `owner` the run's lease for `seconds`."""
        ...

    async def renew(self, run_id: str, owner: str, seconds: float) -> bool:
        """Extend the lease if `owner` still holds it."""
        ...

    async def claim(self, run_id: str, owner: str, seconds: float) -> bool:
        """Take the lease if it has run out; True if `owner` got it."""
        ...

    async def release(self, run_id: str) -> None:
        """The run stopped: nobody needs its lease."""
        ...

    async def expired(self) -> list[str]:
        """Runs whose lease has run out."""
        ...


class ThreadLocks(Protocol):
    """One holder per thread at a time, across every API process that shares the store."""

    def hold(self, thread_id: str) -> AbstractAsyncContextManager[None]:
        """Wait for the thread's lock and hold it for the `async with` block."""
        ...


class RunEvents(Protocol):
    """Publish events on channels; subscribe to them from any replica that shares the store."""

    async def start(self) -> None:
        """Connect (before the first subscribe or publish)."""
        ...

    async def subscribe(self, channel: str, after: str | None = None) -> asyncio.Queue[Event]:
        """A queue that receives the channel's events from now on; with `after` (an event id,
        or `FROM_START`), first the channel's kept events after that one."""
        ...

    def unsubscribe(self, channel: str, queue: asyncio.Queue[Event]) -> None:
        """Stop delivering to `queue` (safe to call while being cancelled)."""
        ...

    def wanted(self, channel: str) -> bool:
        """False only when no one anywhere can be streaming the channel."""
        ...

    def publish(self, channel: str, event: str, data: Any, *, keep: bool = False) -> None:
        """Deliver one event to every subscriber of the channel; with `keep`, also keep it,
        under an id, for subscribers that come later with an earlier id."""
        ...

    def finish(self, run_id: str, status: str, *, keep: bool = False) -> None:
        """Deliver (and with `keep`, keep) a run's `end` event; its subscribers then stop."""
        ...

    def request_stop(self, run_id: str) -> None:
        """Ask every other replica to stop the run, if one executes it."""
        ...

    async def forget(self, run_ids: Sequence[str]) -> None:
        """Drop the kept events of these runs (their thread is being deleted)."""
        ...

    on_stop: StopHandler | None
    """Called with a run id when another replica asks for that run to stop."""

    async def close(self) -> None:
        """Send what is still queued and let connections go."""
        ...
