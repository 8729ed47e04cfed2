"""Typed access to thread and run records, over a `DocumentStore` (SQLite embedded, Redis in
production).

A thread's status is a document of its own (kind `thread-status`): the run that holds the
thread changes it several times, and writing it blindly needs no read and cannot undo a
concurrent metadata update of the thread document. Outside a run it is set through
`settle_thread`, which writes nothing while a run holds the thread.

A thread's runs are never forgotten (every automatic resume is a run of its own), so its
active runs, read on every resume and by the multitask strategies, have an index of their own:
a run that has not ended is also filed as an `active-run` marker under its thread, written
with the run's record and removed with the record that ends it, in the same atomic write.
Reading them costs the thread's active runs, not its history.

A thread is busy while it has an active run: a client's, an automatic resume's, or one a
process that died left behind (until a replica takes it over and ends it, by its lease). A run
starts only by `claim`: reading the thread's status and active runs, deciding, and writing the
run with its marker and the thread busy is one conditional write (`DocumentStore.put_if`),
made only if nothing it read has changed, else read and decided again. So two runs checked
against the same state can never both start, in one process or across replicas.

With a thread TTL (an adapter's setting), every write that names a thread, and reading the
thread, touches its documents, so a thread untouched for the TTL expires whole; a run's
record and marker expire the TTL after its last change, and `keep_alive` holds those of runs
still executing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from graphrelay.server.ports import DocumentStore, Entry, Guard
from graphrelay.server.records import ACTIVE, RunRecord, ThreadRecord, ThreadStatus, now

ALL_THREADS = "all-threads"  # the parent every thread document is filed under
ACTIVE_RUN = "active-run"  # kind of the marker filed under a thread while a run is ACTIVE
CLAIM_ATTEMPTS = 50  # conditional writes a claim tries while others keep changing the thread
# Filings whose parent is no document, so never expires (adapters keep their members' expiry).
ROOT_FILINGS = (("thread", ALL_THREADS),)

IfBusy = Literal["refuse", "queue"]
IfInterrupted = Literal["refuse", "allow"]
Refusal = Literal["busy", "interrupted", "other-assistant", "gone", "contended"]


class ThreadState(BaseModel):
    """The part of a thread the executor changes while it runs."""

    status: ThreadStatus
    updated_at: datetime


@dataclass(frozen=True)
class _Found:
    """A thread's documents and active-run markers as read, and its active runs."""

    thread_id: str
    thread_doc: str | None
    state_doc: str | None
    markers: tuple[str, ...]
    active: tuple[RunRecord, ...]

    @property
    def thread(self) -> ThreadRecord | None:
        """The thread as read (a fresh record each time), None if missing."""
        return _with_state(self.thread_doc, self.state_doc)

    def guard(self) -> Guard:
        """What a write decided on this must still find."""
        return Guard(
            docs=(("thread", self.thread_id, self.thread_doc),
                  ("thread-status", self.thread_id, self.state_doc)),
            filings=((ACTIVE_RUN, self.thread_id, frozenset(self.markers)),),
        )  # fmt: skip

    def stale(self) -> list[tuple[str, str, str]]:
        """The markers whose run is not active: dropped by the next write."""
        return _stale(self.markers, self.active, self.thread_id)


@dataclass(frozen=True)
class Claim:
    """What `RunStore.claim` found: the run now holds the thread, or why it does not.

    `refused`: `busy` (another run is active and the claim refuses to queue), `interrupted`
    (the thread waits on interrupts and the claim needs it not to), `other-assistant` (the
    thread belongs to another graph), `gone` (no such thread), `contended` (the thread kept
    changing for `CLAIM_ATTEMPTS` reads). `active`: the thread's active runs as found, oldest
    first (for `busy`, the runs in the way). `thread`: the thread as found (None if gone).
    """

    refused: Refusal | None
    active: tuple[RunRecord, ...] = ()
    thread: ThreadRecord | None = None

    @property
    def claimed(self) -> bool:
        """Whether the run holds the thread now."""
        return self.refused is None


class RunStore:
    """Typed access to thread and run records."""

    def __init__(self, documents: DocumentStore) -> None:
        self._docs = documents

    async def put_thread(self, thread: ThreadRecord) -> None:
        """Insert or replace a thread."""
        await self._docs.put(*_thread_entries(thread))

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        """A thread, or None; reading it touches it (its TTL starts again)."""
        (doc, state), _ = await asyncio.gather(
            self._docs.get(("thread", thread_id), ("thread-status", thread_id)),
            self._docs.put(touch=_thread_keys(thread_id)),
        )
        return _with_state(doc, state)

    async def thread_exists(self, thread_id: str) -> bool:
        """Whether the thread exists (without touching it)."""
        [doc] = await self._docs.get(("thread", thread_id))
        return doc is not None

    async def threads(self) -> list[ThreadRecord]:
        """Every thread, oldest first."""
        docs = await self._docs.children("thread", ALL_THREADS)
        threads = [ThreadRecord.model_validate_json(doc) for doc in docs]
        if not threads:
            return []
        states = await self._docs.get(*(("thread-status", t.thread_id) for t in threads))
        for thread, state in zip(threads, states, strict=True):
            _apply_state(thread, state)
        return threads

    async def delete_thread(self, thread_id: str) -> list[str]:
        """Remove a thread, its runs and their active-run markers, with every filing of them;
        the ids of the runs it had (their leases and kept events are the caller's)."""
        runs, markers = await asyncio.gather(
            self._docs.filed("run", thread_id), self._docs.filed(ACTIVE_RUN, thread_id)
        )
        await self._docs.delete(
            *(("run", run_id, thread_id) for run_id in runs),
            *(_marker(run_id, thread_id) for run_id in markers),
            ("thread", thread_id, ALL_THREADS),
            ("thread-status", thread_id, ""),
        )
        return runs

    async def run_ids(self, thread_id: str) -> list[str]:
        """The ids of every run filed under the thread, oldest first."""
        return await self._docs.filed("run", thread_id)

    async def keep_alive(self, run_ids: Collection[str]) -> None:
        """Touch runs still executing (their records, markers and threads), which no write
        may have touched for a while."""
        if not run_ids:
            return
        docs = await self._docs.get(*(("run", run_id) for run_id in run_ids))
        runs = [RunRecord.model_validate_json(doc) for doc in docs if doc is not None]
        touched = [key for run in runs for key in (("run", run.run_id, run.thread_id),
                                                    _marker(run.run_id, run.thread_id),
                                                    *_thread_keys(run.thread_id))]  # fmt: skip
        if touched:
            await self._docs.put(touch=touched)

    async def forget_expired(self) -> int:
        """Drop expired threads from the list of every thread; how many."""
        return await self._docs.forget_expired()

    async def claim(
        self,
        run: RunRecord,
        *,
        if_busy: IfBusy = "refuse",
        if_interrupted: IfInterrupted = "refuse",
    ) -> Claim:
        """Start `run` on its thread if the thread's state allows it, atomically across
        processes: write the run (as it is, with its active-run marker) and the thread's status
        `busy` (and its graph, on its first run) only if, when written, the thread exists,
        belongs to the run's graph or to none yet, and either has no active run or
        `if_busy="queue"`, and, when it has none, is not `interrupted` or
        `if_interrupted="allow"`. Nothing is written when refused. The run's `created_at` is
        the time of the check that let it start.
        """
        if run.status not in ACTIVE:
            raise ValueError(f"a run starts pending or running, not {run.status}")
        for _ in range(CLAIM_ATTEMPTS):
            found = await self._found(run.thread_id)
            thread = found.thread
            refused = _refusal(thread, run, found.active, if_busy, if_interrupted)
            if refused is not None or thread is None:
                return Claim(refused, found.active, thread)
            if await self._write_claim(run, thread, found):
                return Claim(None, found.active, thread)
        return Claim("contended")

    async def _write_claim(self, run: RunRecord, thread: ThreadRecord, found: _Found) -> bool:
        """Write `run` holding its thread, if the thread is still as `found`."""
        entries = [_status_entry(run.thread_id, "busy")]
        if thread.graph_id is None:
            thread.graph_id = run.assistant_id
            entries.append(_thread_entries(thread)[0])
        run.created_at = run.updated_at = now()  # a run is created when it gets its thread
        return await self._docs.put_if(
            found.guard(), *_run_entries(run), *entries, drop=found.stale(),
            touch=_thread_keys(run.thread_id),
        )  # fmt: skip

    async def drop_claim(self, run: RunRecord, thread_status: ThreadStatus) -> None:
        """Take back a claim that did no work: remove the run and set the thread's status, in
        one write. Only the claim's holder may call this."""
        await self._docs.put(
            _status_entry(run.thread_id, thread_status),
            drop=[("run", run.run_id, run.thread_id), _marker(run.run_id, run.thread_id)],
            touch=_thread_keys(run.thread_id),
        )

    async def settle_thread(self, thread_id: str, status: ThreadStatus) -> bool:
        """Set the thread's status unless a run holds the thread (that run sets it when it
        ends) or the thread is gone, atomically; True if set."""
        for _ in range(CLAIM_ATTEMPTS):
            found = await self._found(thread_id)
            if found.thread is None or found.active:
                return False
            status_entry = _status_entry(thread_id, status)
            touch = _thread_keys(thread_id)
            if await self._docs.put_if(found.guard(), status_entry, drop=found.stale(),
                                       touch=touch):  # fmt: skip
                return True
        return False

    async def _found(self, thread_id: str) -> _Found:
        """The thread's documents and active runs, as a claim decides on them."""
        (thread_doc, state_doc), markers = await asyncio.gather(
            self._docs.get(("thread", thread_id), ("thread-status", thread_id)),
            self._docs.filed(ACTIVE_RUN, thread_id),
        )
        active = await self._active(markers)
        return _Found(thread_id, thread_doc, state_doc, tuple(markers), tuple(active))

    async def put_run(self, run: RunRecord, thread_status: ThreadStatus | None = None) -> None:
        """Insert or replace a run (and set its thread's status in the same write)."""
        if thread_status is None:
            await self._put_run(run)
        else:
            await self._put_run(run, _status_entry(run.thread_id, thread_status))

    async def _put_run(self, run: RunRecord, *others: Entry) -> None:
        """Write `others` and the run, with its active-run marker filed while the run is
        active and removed once it has ended, all in one write."""
        touch = _thread_keys(run.thread_id)
        if run.status in ACTIVE:
            await self._docs.put(*others, *_run_entries(run), touch=touch)
        else:
            drop = [_marker(run.run_id, run.thread_id)]
            await self._docs.put(*others, _run_entry(run), drop=drop, touch=touch)

    async def get_run(self, run_id: str) -> RunRecord | None:
        """A run, or None."""
        [doc] = await self._docs.get(("run", run_id))
        return RunRecord.model_validate_json(doc) if doc is not None else None

    async def delete_run(self, run: RunRecord) -> None:
        """Remove one run and its active-run marker."""
        await self._docs.delete(
            ("run", run.run_id, run.thread_id), _marker(run.run_id, run.thread_id)
        )

    async def runs_of(self, thread_id: str) -> list[RunRecord]:
        """A thread's runs, oldest first."""
        docs = await self._docs.children("run", thread_id)
        return [RunRecord.model_validate_json(doc) for doc in docs]

    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        """A thread's pending and running runs, oldest first, found by their markers."""
        run_ids = await self._docs.filed(ACTIVE_RUN, thread_id)
        active = await self._active(run_ids)
        stale = _stale(run_ids, active, thread_id)
        if stale:
            await self._docs.delete(*stale)
        return active

    async def _active(self, run_ids: list[str]) -> list[RunRecord]:
        """The runs of these markers that are active, in the markers' order. The record
        decides: a marker left behind (say, by a replica that predates the index ending the
        run) must not make an ended run look active."""
        if not run_ids:
            return []
        docs = await self._docs.get(*(("run", run_id) for run_id in run_ids))
        runs = [RunRecord.model_validate_json(doc) for doc in docs if doc is not None]
        return [run for run in runs if run.status in ACTIVE]


def _refusal(
    thread: ThreadRecord | None,
    run: RunRecord,
    active: tuple[RunRecord, ...],
    if_busy: IfBusy,
    if_interrupted: IfInterrupted,
) -> Refusal | None:
    """Why `run` may not start on `thread` now (None: it may)."""
    if thread is None:
        return "gone"
    if thread.graph_id not in (None, run.assistant_id):
        return "other-assistant"
    if active:
        return "busy" if if_busy == "refuse" else None
    if thread.status == "interrupted" and if_interrupted == "refuse":
        return "interrupted"
    return None


def _stale(
    run_ids: Sequence[str], active: Sequence[RunRecord], thread_id: str
) -> list[tuple[str, str, str]]:
    """The markers of `run_ids` whose run is not active."""
    live = {run.run_id for run in active}
    return [_marker(run_id, thread_id) for run_id in run_ids if run_id not in live]


def _thread_entries(thread: ThreadRecord) -> tuple[Entry, Entry]:
    doc = thread.model_dump_json(exclude={"status"})
    state = ThreadState(status=thread.status, updated_at=thread.updated_at).model_dump_json()
    return Entry("thread", thread.thread_id, doc, ALL_THREADS), Entry(
        "thread-status", thread.thread_id, state
    )


def _status_entry(thread_id: str, status: ThreadStatus) -> Entry:
    return Entry(
        "thread-status", thread_id, ThreadState(status=status, updated_at=now()).model_dump_json()
    )


def _run_entry(run: RunRecord) -> Entry:
    return Entry("run", run.run_id, run.model_dump_json(), run.thread_id)


def _run_entries(run: RunRecord) -> tuple[Entry, Entry]:
    """An active run's record, then its marker."""
    return _run_entry(run), Entry(ACTIVE_RUN, run.run_id, "", run.thread_id)


def _marker(run_id: str, thread_id: str) -> tuple[str, str, str]:
    return ACTIVE_RUN, run_id, thread_id


def _thread_keys(thread_id: str) -> list[tuple[str, str, str]]:
    """The (kind, id, parent) documents every touch of a thread keeps alive."""
    return [("thread", thread_id, ALL_THREADS), ("thread-status", thread_id, "")]


def _with_state(doc: str | None, state: str | None) -> ThreadRecord | None:
    if doc is None:
        return None
    thread = ThreadRecord.model_validate_json(doc)
    _apply_state(thread, state)
    return thread


def _apply_state(thread: ThreadRecord, state: str | None) -> None:
    if state is not None:
        current = ThreadState.model_validate_json(state)
        thread.status, thread.updated_at = current.status, current.updated_at
