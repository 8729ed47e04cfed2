"""Threads and runs as the API stores and returns them (Agent Server shapes)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(tz=UTC)


class ThreadRecord(BaseModel):
    """A thread: the id LangGraph checkpoints under, plus what the API keeps beside it."""

    thread_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: ThreadStatus = "idle"
    graph_id: str | None = None
    tenant: str = "default"


class RunRecord(BaseModel):
    """One run of a graph on a thread: a client's run or an automatic resume."""

    run_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    thread_id: str
    assistant_id: str
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)
    status: RunStatus = "pending"
    metadata: dict[str, Any] = Field(default_factory=dict)
    multitask_strategy: str = "reject"
    kwargs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
