"""Resuming a suspended thread with every background outcome that is ready.

Callers hold the thread's lock. A thread may wait on several calls at once; each ready one is
resumed by its interrupt id in one `Command`, since a bare `Command(resume=v)` is refused
when several interrupts are pending.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Interrupt

from graphrelay.bridge.records import PENDING_INTERRUPT_TYPE, TaskStatus
from graphrelay.crash import crash_point
from graphrelay.orchestrator.registry import Graph
from graphrelay.ports import Ledger


def pending_task_ids(interrupts: tuple[Interrupt, ...] | list[Interrupt]) -> dict[str, str]:
    """Interrupt id → task id for each interrupt that waits on a background call."""
    pending: dict[str, str] = {}
    for item in interrupts:
        value = item.value
        if isinstance(value, dict) and value.get("type") == PENDING_INTERRUPT_TYPE:
            pending[item.id] = str(value["task_id"])
    return pending


async def ready_resumes(graph: Graph, config: RunnableConfig, ledger: Ledger) -> dict[str, Any]:
    """Interrupt id → outcome for pending background calls whose outcome is stored."""
    state = await graph.aget_state(config)
    pending = pending_task_ids(state.interrupts)
    ready: dict[str, Any] = {}
    for interrupt_id, task_id in pending.items():
        record = await asyncio.to_thread(ledger.get, task_id)
        if record is not None and record.finished:
            ready[interrupt_id] = record.outcome().model_dump()
    return ready


async def resume_once(
    graph: Graph, config: RunnableConfig, ledger: Ledger, ready: dict[str, Any]
) -> list[str]:
    """Resume the thread with `ready` outcomes, then mark them applied; the task ids."""
    await graph.ainvoke(Command(resume=ready), config)
    crash_point("mid_resume")
    task_ids = [outcome["task_id"] for outcome in ready.values()]
    await asyncio.to_thread(ledger.mark_applied, task_ids)
    return task_ids


async def settle_unawaited(
    graph: Graph, config: RunnableConfig, ledger: Ledger, thread_id: str
) -> list[str]:
    """Mark APPLIED the thread's stored outcomes that no pending interrupt waits for.

    Callers hold the thread's lock, so no run of the thread is under way: such an outcome was
    taken in already (the process died before marking it), or the tool will find it in the
    ledger when it runs again. Either way nothing must resume with it; the task ids.
    """
    state = await graph.aget_state(config)
    awaited = set(pending_task_ids(state.interrupts).values())
    records = await asyncio.to_thread(ledger.for_thread, thread_id)
    unapplied = (TaskStatus.COMPLETED, TaskStatus.FAILED)
    done = [r.task_id for r in records if r.status in unapplied and r.task_id not in awaited]
    if done:
        await asyncio.to_thread(ledger.mark_applied, done)
    return done
