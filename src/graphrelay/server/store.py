"""Typed access to thread and run records, over a `DocumentStore` (SQLite embedded, Redis in
production).

A thread's status is a document of its own (kind `thread-status`): the executor changes it
several times a run, and writing it blindly needs no read and cannot undo a concurrent
metadata update of the thread document.

A thread's runs are never forgotten (every automatic resume is a run of its own), so its
active runs, read on every resume and by the multitask strategies, have an index of their own:
a run that has not ended is also filed as an `active-run` marker under its thread, written
with the run's record and removed with the record that ends it, in the same atomic write.
Reading them costs the thread's active runs, not its history.

With a thread TTL (an adapter's setting), every write that names a thread, and reading the
thread, touches its documents, so a thread untouched for the TTL expires whole; a run's
record and marker expire the TTL after its last change, and `keep_alive` holds those of runs
still executing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import datetime

from pydantic import BaseModel

from graphrelay.server.ports import DocumentStore, Entry
from graphrelay.server.records import ACTIVE, RunRecord, ThreadRecord, ThreadStatus, now

ALL_THREADS = "all-threads"  # the parent every thread document is filed under
ACTIVE_RUN = "active-run"  # kind of the marker filed under a thread while a run is ACTIVE
# Filings whose parent is no document, so never expires (adapters keep their members' expiry).
ROOT_FILINGS = (("thread", ALL_THREADS),)


class ThreadState(BaseModel):
    """The part of a thread the executor changes while it runs."""

    status: ThreadStatus
    updated_at: datetime


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

    async def set_thread_status(self, thread_id: str, status: ThreadStatus) -> None:
        """Change only the thread's status (no read, so no lost update)."""
        await self._docs.put(_status_entry(thread_id, status), touch=_thread_keys(thread_id))

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

    async def start_run(self, thread: ThreadRecord, run: RunRecord) -> None:
        """Write a new run and its thread (now busy) together."""
        await self._put_run(run, *_thread_entries(thread))

    async def put_run(self, run: RunRecord, thread_status: ThreadStatus | None = None) -> None:
        """Insert or replace a run (and set its thread's status in the same write)."""
        if thread_status is None:
            await self._put_run(run)
        else:
            await self._put_run(run, _status_entry(run.thread_id, thread_status))

    async def _put_run(self, run: RunRecord, *others: Entry) -> None:
        """Write `others` and the run, with its active-run marker filed while the run is
        active and removed once it has ended, all in one write."""
        entries, touch = [*others, _run_entry(run)], _thread_keys(run.thread_id)
        if run.status in ACTIVE:
            marker = Entry(ACTIVE_RUN, run.run_id, "", run.thread_id)
            await self._docs.put(*entries, marker, touch=touch)
        else:
            await self._docs.put(*entries, drop=[_marker(run.run_id, run.thread_id)], touch=touch)

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
        if not run_ids:
            return []
        docs = await self._docs.get(*(("run", run_id) for run_id in run_ids))
        runs = [RunRecord.model_validate_json(doc) for doc in docs if doc is not None]
        active = [run for run in runs if run.status in ACTIVE]
        # The record decides: a marker left behind (say, by a replica that predates the
        # index ending the run) must not make an ended run look active.
        stale = set(run_ids) - {run.run_id for run in active}
        if stale:
            await self._docs.delete(*(_marker(run_id, thread_id) for run_id in stale))
        return active


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
