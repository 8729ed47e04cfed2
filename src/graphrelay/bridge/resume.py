"""The API's side of resume: which of a suspended thread's calls are ready, the `Command`
that wakes them, and settling outcomes nothing waits for any more.

A resume only wakes: it names the ready calls' interrupts (`wake_id`) with a marker value,
LangGraph re-runs their tasks, and each call reads its own outcome from the ledger, never from
the resume value (`bridge/tool.py` says why). A thread may wait on several calls at once; every
ready one is woken in one `Command`. The run engine (`server/resumes.py`) runs that command as
a run of its own.

Interrupts written before calls had ids of their own (by graphrelay 0.1) have LangGraph's
ids; they are woken without a value (a `Command` with an empty map re-runs the task all the
same), since a value under such an id would reach the task's next `interrupt()` call.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from langgraph.types import Command, Interrupt, StateSnapshot

from graphrelay.bridge.calls import PENDING_INTERRUPT_TYPE, CallStatus, wake_id
from graphrelay.bridge.ledger import Ledger

_INTERRUPT_ID = re.compile(r"[0-9a-f]{32}")


def is_resume_map(resume: Any) -> bool:
    """Whether a `Command`'s resume value is a map of interrupt ids, as LangGraph reads it (a
    dict whose keys are all 32 hex digits, langgraph/pregel/_utils.py); any other value goes
    to whichever `interrupt()` asks next."""
    return isinstance(resume, dict) and all(
        isinstance(key, str) and _INTERRUPT_ID.fullmatch(key) for key in resume
    )


def pending_task_ids(interrupts: tuple[Interrupt, ...] | list[Interrupt]) -> dict[str, str]:
    """Interrupt id → task id for each interrupt that waits on a background call."""
    pending: dict[str, str] = {}
    for item in interrupts:
        value = item.value
        if isinstance(value, dict) and value.get("type") == PENDING_INTERRUPT_TYPE:
            pending[item.id] = str(value["task_id"])
    return pending


async def ready_calls(state: StateSnapshot, ledger: Ledger) -> dict[str, str]:
    """Interrupt id → task id for the pending calls whose outcome is stored."""
    pending = pending_task_ids(state.interrupts)
    records = await asyncio.gather(*(ledger.aget(task_id) for task_id in pending.values()))
    return {
        interrupt_id: task_id
        for (interrupt_id, task_id), record in zip(pending.items(), records, strict=True)
        if record is not None and record.finished
    }


def wake_command(ready: Mapping[str, str]) -> Command[Any]:
    """The `Command` that wakes the tasks of the ready calls (interrupt id → task id): each
    call's own interrupt is named with a marker (never the outcome)."""
    return Command(
        resume={
            interrupt_id: {"wake": task_id}
            for interrupt_id, task_id in ready.items()
            if interrupt_id == wake_id(task_id)
        }
    )


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
