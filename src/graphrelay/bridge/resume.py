"""What a suspended thread waits for, and settling outcomes that nothing waits for any more.

A thread may wait on several calls at once; the API resumes each ready one by its interrupt
id in one `Command`, since a bare `Command(resume=v)` is refused when several interrupts are
pending (see `api/executor.py`).
"""

from __future__ import annotations

from langgraph.types import Interrupt, StateSnapshot

from graphrelay.bridge.records import PENDING_INTERRUPT_TYPE, TaskStatus
from graphrelay.ports import Ledger


def pending_task_ids(interrupts: tuple[Interrupt, ...] | list[Interrupt]) -> dict[str, str]:
    """Interrupt id → task id for each interrupt that waits on a background call."""
    pending: dict[str, str] = {}
    for item in interrupts:
        value = item.value
        if isinstance(value, dict) and value.get("type") == PENDING_INTERRUPT_TYPE:
            pending[item.id] = str(value["task_id"])
    return pending


async def settle_unawaited(state: StateSnapshot, ledger: Ledger, thread_id: str) -> list[str]:
    """Mark APPLIED the thread's stored outcomes that no pending interrupt in `state` awaits.

    Callers hold the thread's lock, so no run of the thread is under way: such an outcome was
    taken in already (the process died before marking it), or the tool will find it in the
    ledger when it runs again. Either way nothing must resume with it; the task ids.
    """
    awaited = set(pending_task_ids(state.interrupts).values())
    records = await ledger.afor_thread(thread_id)
    unapplied = (TaskStatus.COMPLETED, TaskStatus.FAILED)
    done = [r.task_id for r in records if r.status in unapplied and r.task_id not in awaited]
    if done:
        await ledger.amark_applied(done)
    return done
