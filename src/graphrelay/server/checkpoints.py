"""A thread's checkpoints: the config that addresses them, and operations that work on any
saver, for savers that do not implement them.

LangGraph's SQLite saver has no `copy_thread` or `delete_for_runs`; the API still offers
thread copies there by re-putting every checkpoint and write through the public saver API.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple


def thread_config(thread_id: str, run_id: str | None = None) -> RunnableConfig:
    """The config that addresses a thread's latest checkpoint (and tags what a run writes)."""
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if run_id is not None:
        configurable["run_id"] = run_id  # copied into checkpoint metadata: delete_for_runs
    return {"configurable": configurable}


def supports(saver: BaseCheckpointSaver[Any], method: str) -> bool:
    """True when the saver's class implements `method` itself."""
    return getattr(type(saver), method) is not getattr(BaseCheckpointSaver, method)


async def copy_thread(saver: BaseCheckpointSaver[Any], source: str, target: str) -> None:
    """Copy every checkpoint and pending write of `source` to `target`, oldest first."""
    if supports(saver, "acopy_thread"):
        await saver.acopy_thread(source, target)
        return
    found = [item async for item in saver.alist({"configurable": {"thread_id": source}})]
    for item in sorted(found, key=lambda t: t.config["configurable"]["checkpoint_id"]):
        stored = await saver.aput(
            _parent_in(target, item),
            item.checkpoint,
            item.metadata,
            item.checkpoint["channel_versions"],
        )
        by_task: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for task_id, channel, value in item.pending_writes or []:
            by_task[task_id].append((channel, value))
        for task_id, writes in by_task.items():
            await saver.aput_writes(stored, writes, task_id)


def _parent_in(thread_id: str, item: CheckpointTuple) -> RunnableConfig:
    configurable: dict[str, Any] = {
        "thread_id": thread_id,
        "checkpoint_ns": item.config["configurable"].get("checkpoint_ns", ""),
    }
    if item.parent_config:
        configurable["checkpoint_id"] = item.parent_config["configurable"]["checkpoint_id"]
    return {"configurable": configurable}
