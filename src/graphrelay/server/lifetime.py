"""A thread's lifetime: what exists for a thread, and how it goes away.

A thread is spread over every store: its checkpoints (the checkpointer), its records and its
runs' records and active-run markers (the run store), its background calls (the ledger), its
runs' leases and kept events, and, while a run or resume holds it, its lock. It goes away in
one of two ways:

- **Deleted** (`delete_thread`): under the thread's lock, with no run active on it, its calls
  are settled (closed ABANDONED with the reason, the ones a worker may still run revoked and
  kept closed for a while so no late worker runs or reopens them), then its checkpoints, its
  runs' leases and kept events, and last its records, so a delete that dies half-way leaves a
  thread that can be deleted again. Nothing is repaired for it afterwards: the sweeper
  settles any call whose thread no longer exists.
- **Expired** (`thread_ttl_seconds`): every Redis store gives what it writes for the thread
  that TTL, and every write or read of the thread touches it again; entries of shared indexes
  leave with the records they name (docs/state.md).
"""

from __future__ import annotations

import asyncio

from graphrelay.bridge.ledger import settle_thread
from graphrelay.server.engine import Engine

DELETED_REASON = "its thread was deleted"


async def delete_thread(engine: Engine, thread_id: str) -> bool:
    """Delete the thread from every store; False, with nothing deleted, while a run is active
    on it (a run that has not ended, or waits for the thread)."""
    executor, store = engine.executor, engine.store
    async with executor.locks.hold(thread_id):
        if await store.active_runs(thread_id):
            return False
        await settle_thread(engine.ledger, engine.dispatcher, thread_id, DELETED_REASON)
        await engine.checkpointer.adelete_thread(thread_id)
        run_ids = await store.run_ids(thread_id)
        await asyncio.gather(
            *(executor.leases.release(run_id) for run_id in run_ids),
            executor.events.forget(run_ids),
        )
        await store.delete_thread(thread_id)
    return True
