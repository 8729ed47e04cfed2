"""Threads and runs, in the paths and shapes of the LangGraph Agent Server API."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from langgraph.types import Command
from pydantic import BaseModel, Field, model_validator

from graphrelay.api.errors import conflict, not_found
from graphrelay.api.executor import thread_config
from graphrelay.api.records import RunRecord, ThreadRecord, now
from graphrelay.api.runtime import ApiRuntime
from graphrelay.api.serialize import state_json

router = APIRouter(tags=["threads"])


class ThreadCreate(BaseModel):
    """Body of `POST /threads`."""

    thread_id: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class RunCommand(BaseModel):
    """A `Command` sent instead of input."""

    resume: Any = None
    update: Any = None
    goto: Any = None


class RunCreate(BaseModel):
    """Body of `POST /threads/{thread_id}/runs` (fields graphrelay does not use are ignored)."""

    model_config = {"extra": "ignore"}

    assistant_id: str
    input: dict[str, Any] | None = None
    command: RunCommand | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] | None = None
    multitask_strategy: Literal["reject"] = "reject"

    @model_validator(mode="after")
    def _input_or_command(self) -> RunCreate:
        if self.input is not None and self.command is not None:
            raise ValueError("give either input or command, not both")
        return self


def _runtime(request: Request) -> ApiRuntime:
    runtime: ApiRuntime = request.app.state.runtime
    return runtime


async def _thread(runtime: ApiRuntime, thread_id: str) -> ThreadRecord:
    thread = await asyncio.to_thread(runtime.store.get_thread, thread_id)
    if thread is None:
        raise not_found("thread", thread_id)
    return thread


@router.post("/threads")
async def create_thread(body: ThreadCreate, request: Request) -> ThreadRecord:
    """Create a thread (or return it with `if_exists="do_nothing"`)."""
    runtime = _runtime(request)
    if body.thread_id is not None:
        existing = await asyncio.to_thread(runtime.store.get_thread, body.thread_id)
        if existing is not None:
            if body.if_exists == "do_nothing":
                return existing
            raise conflict(f"thread {body.thread_id} already exists")
    thread = ThreadRecord(metadata=body.metadata, **_given(thread_id=body.thread_id))
    await asyncio.to_thread(runtime.store.put_thread, thread)
    return thread


def _given(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: str, request: Request) -> dict[str, Any]:
    """A thread with its current values and interrupts."""
    runtime = _runtime(request)
    thread = await _thread(runtime, thread_id)
    result = thread.model_dump(mode="json", exclude={"graph_id"})
    result.update(values={}, interrupts={})
    if thread.graph_id:
        state = state_json(
            await runtime.graphs[thread.graph_id].aget_state(thread_config(thread_id))
        )
        result["values"] = state["values"]
        result["interrupts"] = {
            task["id"]: task["interrupts"] for task in state["tasks"] if task["interrupts"]
        }
    return result


@router.get("/threads/{thread_id}/state")
async def get_state(thread_id: str, request: Request) -> dict[str, Any]:
    """The thread's latest state snapshot."""
    runtime = _runtime(request)
    thread = await _thread(runtime, thread_id)
    if thread.graph_id is None:
        return _empty_state(thread_id)
    snapshot = await runtime.graphs[thread.graph_id].aget_state(thread_config(thread_id))
    return state_json(snapshot)


def _empty_state(thread_id: str) -> dict[str, Any]:
    checkpoint = {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None}
    return {
        "values": {}, "next": [], "checkpoint": {**checkpoint, "checkpoint_map": None},
        "metadata": {}, "created_at": None, "parent_checkpoint": None, "tasks": [],
        "interrupts": [],
    }  # fmt: skip


@router.post("/threads/{thread_id}/runs")
async def create_run(thread_id: str, body: RunCreate, request: Request) -> RunRecord:
    """Start a run in the background; it suspends on background tools and resumes itself."""
    runtime = _runtime(request)
    thread = await _thread(runtime, thread_id)
    if body.assistant_id not in runtime.graphs:
        raise not_found("assistant", body.assistant_id)
    if thread.graph_id not in (None, body.assistant_id):
        raise conflict(f"thread {thread_id} belongs to assistant {thread.graph_id}")
    if thread.status == "busy":
        raise conflict(f"thread {thread_id} is busy with another run (multitask_strategy=reject)")
    if thread.status == "interrupted" and body.command is None:
        raise conflict(
            f"thread {thread_id} waits on interrupts; resume it with command={{'resume': ...}}"
        )
    run = RunRecord(
        thread_id=thread_id,
        assistant_id=body.assistant_id,
        metadata=body.metadata,
        kwargs=body.model_dump(mode="json", exclude_none=True),
    )
    thread.graph_id, thread.status, thread.updated_at = body.assistant_id, "busy", now()
    await asyncio.to_thread(runtime.store.put_thread, thread)
    await asyncio.to_thread(runtime.store.put_run, run)
    graph_input: Any = body.input
    if body.command is not None:
        graph_input = Command(**body.command.model_dump(exclude_none=True))
    runtime.executor.start(run, graph_input)
    return run


@router.get("/threads/{thread_id}/runs")
async def list_runs(thread_id: str, request: Request) -> list[RunRecord]:
    """The thread's runs, newest first (resumes by background tasks included)."""
    runtime = _runtime(request)
    await _thread(runtime, thread_id)
    runs = await asyncio.to_thread(runtime.store.runs_of, thread_id)
    return list(reversed(runs))


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, request: Request) -> RunRecord:
    """One run."""
    runtime = _runtime(request)
    run = await asyncio.to_thread(runtime.store.get_run, run_id)
    if run is None or run.thread_id != thread_id:
        raise not_found("run", run_id)
    return run
