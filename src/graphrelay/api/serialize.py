"""LangGraph state snapshots → the JSON shapes `langgraph-sdk` expects."""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from langchain_core.runnables import RunnableConfig
from langgraph.types import Interrupt, StateSnapshot


def interrupt_json(item: Interrupt) -> dict[str, Any]:
    """An interrupt as `{value, id}`."""
    return {"value": jsonable_encoder(item.value), "id": item.id}


def checkpoint_json(config: RunnableConfig | None) -> dict[str, Any] | None:
    """A snapshot's config as the SDK's `Checkpoint`."""
    if not config:
        return None
    configurable = config.get("configurable", {})
    return {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


def state_json(snapshot: StateSnapshot) -> dict[str, Any]:
    """A `StateSnapshot` as the SDK's `ThreadState`."""
    return {
        "values": jsonable_encoder(snapshot.values),
        "next": list(snapshot.next),
        "checkpoint": checkpoint_json(snapshot.config),
        "metadata": jsonable_encoder(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "parent_checkpoint": checkpoint_json(snapshot.parent_config),
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "error": None if task.error is None else repr(task.error),
                "interrupts": [interrupt_json(item) for item in task.interrupts],
                "checkpoint": None,
                "state": None,
                "result": jsonable_encoder(task.result),
            }
            for task in snapshot.tasks
        ],
        "interrupts": [interrupt_json(item) for item in snapshot.interrupts],
    }
