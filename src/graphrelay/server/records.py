"""Threads and runs as the run engine stores them (the Agent Server's shapes), and the typed
options a run was started with."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from langgraph.types import Command
from pydantic import BaseModel, Field, HttpUrl, model_validator

from graphrelay.server.streaming import STREAM_MODES, stream_modes

RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
MultitaskStrategy = Literal["reject", "enqueue", "interrupt", "rollback"]
ACTIVE: tuple[RunStatus, ...] = ("pending", "running")  # a run that has not ended


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


class RunCommand(BaseModel):
    """A LangGraph `Command` sent instead of input."""

    resume: Any = None
    update: Any = None
    goto: Any = None

    def to_command(self) -> Command[Any]:
        """The LangGraph `Command`, with the fields that were given."""
        return Command(**{k: v for k, v in self.model_dump().items() if v is not None})


class RunOptions(BaseModel):
    """What a run was asked to do: the Agent Server's run request, typed."""

    assistant_id: str | None = None
    input: dict[str, Any] | None = None
    command: RunCommand | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    checkpoint: dict[str, Any] | None = None
    multitask_strategy: MultitaskStrategy = "reject"
    webhook: HttpUrl | None = None
    stream_mode: str | list[str] | None = None
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    on_disconnect: Literal["cancel", "continue"] = "continue"

    @model_validator(mode="after")
    def _input_or_command(self) -> RunOptions:
        if self.input is not None and self.command is not None:
            raise ValueError("give either input or command, not both")
        unknown = set(stream_modes(self.stream_mode)) - set(STREAM_MODES)
        if unknown:
            raise ValueError(f"unknown stream_mode {sorted(unknown)}; use {list(STREAM_MODES)}")
        return self

    @property
    def start_checkpoint(self) -> str | None:
        """The checkpoint to start (fork) from, however the request named it."""
        return self.checkpoint_id or (self.checkpoint or {}).get("checkpoint_id")

    def graph_input(self) -> Any:
        """What the run feeds the graph: its input, or its command as a LangGraph `Command`."""
        return self.command.to_command() if self.command is not None else self.input


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
    options: RunOptions = Field(default_factory=RunOptions)
    # The background calls whose outcomes this run resumes the thread with (their task ids):
    # the ledger marks them APPLIED once the run has taken them in.
    applies: list[str] = Field(default_factory=list)
    error: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_earlier_records(cls, data: Any) -> Any:
        """Records written before `options` and `applies` existed still load."""
        if isinstance(data, dict) and "kwargs" in data and "options" not in data:
            data = {**data, "options": data.pop("kwargs")}
            metadata = data.get("metadata") or {}
            if metadata.get("resumed_by") == "background_tasks" and "applies" not in data:
                data["applies"] = list(metadata.get("task_ids") or [])
        return data

    @property
    def resumable(self) -> bool:
        """Whether the run keeps its events for clients that resume its stream."""
        return self.options.stream_resumable

    def view(self) -> RunView:
        """The run as the Agent Server shows it."""
        return RunView(
            **self.model_dump(exclude={"options", "applies"}),
            kwargs=self.options.model_dump(mode="json", exclude_none=True),
        )


class RunView(BaseModel):
    """A run in the Agent Server's shape (`Run`): its options under `kwargs`."""

    run_id: str
    thread_id: str
    assistant_id: str
    created_at: datetime
    updated_at: datetime
    status: RunStatus
    metadata: dict[str, Any]
    multitask_strategy: str
    kwargs: dict[str, Any]
    error: str | None = None
