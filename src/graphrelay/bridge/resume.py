"""The API's side of resume: which of a suspended thread's calls are ready, the `Command`
that resumes them, and settling outcomes nothing waits for any more.

A thread may wait on several calls at once; each ready one is resumed by its interrupt id in
one `Command`, since a bare `Command(resume=v)` is refused when several interrupts are
pending. The run engine (`server/resumes.py`) runs that command as a run of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from langgraph.types import Interrupt, StateSnapshot

from graphrelay.bridge.calls import PENDING_INTERRUPT_TYPE, CallStatus
from graphrelay.bridge.ledger import Ledger


def pending_task_ids(interrupts: tuple[Interrupt, ...] | list[Interrupt]) -> dict[str, str]:
    """Interrupt id → task id for each interrupt that waits on a background call."""
    pending: dict[str, str] = {}
    for item in interrupts:
        value = item.value
        if isinstance(value, dict) and value.get("type") == PENDING_INTERRUPT_TYPE:
            pending[item.id] = str(value["task_id"])
    return pending


async def ready_outcomes(state: StateSnapshot, ledger: Ledger) -> dict[str, Any]:
    """Interrupt id → outcome (JSON) for the pending calls whose outcome is stored."""
    pending = pending_task_ids(state.interrupts)
    records = await asyncio.gather(*(ledger.aget(task_id) for task_id in pending.values()))
    return {
        interrupt_id: record.outcome().model_dump()
        for interrupt_id, record in zip(pending, records, strict=True)
        if record is not None and record.finished
    }


def task_ids_of(ready: Mapping[str, Any]) -> list[str]:
    """The task ids of the outcomes in `ready`."""
    return [outcome["task_id"] for outcome in ready.values()]


async def settle_unawaited(state: StateSnapshot, ledger: Ledger, thread_id: str) -> list[str]:
    """Mark APPLIED the thread's stored outcomes that no pending interrupt in `state` awaits.

    Callers hold the thread's lock, so no run of the thread is under way: such an outcome was
    taken in already (the process died before marking it), or the tool will find it in the
    ledger when it runs again. Either way nothing must resume with it; the task ids.
    """
    awaited = set(pending_task_ids(state.interrupts).values())
    records = await ledger.afor_thread(thread_id)
    unapplied = (CallStatus.COMPLETED, CallStatus.FAILED)
    done = [r.task_id for r in records if r.status in unapplied and r.task_id not in awaited]
    if done:
        await ledger.amark_applied(done)
    return done
