"""Runs on threads, in the paths and shapes of the LangGraph Agent Server API.

A run executes in this process as an asyncio task. When the agent suspends on background
tools the run ends (`success`) with the thread `interrupted`; the thread then resumes by itself
in runs of its own (`metadata.resumed_by == "background_tasks"`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, HttpUrl, model_validator

from graphrelay.api.auth import authenticate
from graphrelay.api.errors import bad_request, conflict, documented, not_found
from graphrelay.api.events import (
    END,
    FROM_START,
    Event,
    end_event,
    thread_channel,
    to_json,
    valid_event_id,
)
from graphrelay.api.executor import (
    STOP_WAIT,
    STREAM_MODES,
    graph_input_of,
    resumable,
    stream_modes,
    thread_config,
)
from graphrelay.api.records import RunRecord, now
from graphrelay.api.runtime import ApiRuntime
from graphrelay.api.serialize import interrupt_json
from graphrelay.api.threads import runtime_of, thread_or_404
from graphrelay.state import portable

# How the OpenAPI document describes every streaming endpoint's 200.
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}}}}

LAST_EVENT_ID = Header(None, alias="Last-Event-ID", description="resume after this event id")

log = logging.getLogger(__name__)

router = APIRouter(
    dependencies=[Depends(authenticate)], responses=documented(400, 401, 404, 409), tags=["runs"]
)


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
    checkpoint_id: str | None = None
    checkpoint: dict[str, Any] | None = None
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] = "reject"
    webhook: HttpUrl | None = None
    stream_mode: str | list[str] | None = None
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    on_disconnect: Literal["cancel", "continue"] = "continue"

    @model_validator(mode="after")
    def _input_or_command(self) -> RunCreate:
        if self.input is not None and self.command is not None:
            raise ValueError("give either input or command, not both")
        unknown = set(stream_modes(self.stream_mode)) - set(STREAM_MODES)
        if unknown:
            raise ValueError(f"unknown stream_mode {sorted(unknown)}; use {list(STREAM_MODES)}")
        return self


async def _start(request: Request, thread_id: str, body: RunCreate) -> RunRecord:
    runtime = runtime_of(request)
    thread = await thread_or_404(request, thread_id)
    if body.assistant_id not in runtime.graphs:
        raise not_found("assistant", body.assistant_id)
    if thread.graph_id not in (None, body.assistant_id):
        raise conflict(f"thread {thread_id} belongs to assistant {thread.graph_id}")
    if thread.status == "busy":
        await _make_room(runtime, thread_id, body.multitask_strategy)
    checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
    if thread.status == "interrupted" and body.command is None and checkpoint_id is None:
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
    await runtime.executor.start(run, thread, graph_input_of(run.kwargs), checkpoint_id)
    return run


async def _make_room(runtime: ApiRuntime, thread_id: str, strategy: str) -> None:
    """Apply the multitask strategy to the runs already active on a busy thread."""
    if strategy == "reject":
        raise conflict(f"thread {thread_id} is busy with another run (multitask_strategy=reject)")
    if strategy == "enqueue":
        return  # the thread lock runs it after the active ones
    if strategy == "rollback":
        _check_rollback(runtime)
    for active in await runtime.store.active_runs(thread_id):
        await _stop(runtime, active, rollback=strategy == "rollback")


def _check_rollback(runtime: ApiRuntime) -> None:
    if not portable.supports(runtime.checkpointer, "adelete_for_runs"):
        name = type(runtime.checkpointer).__name__
        raise conflict(f"{name} cannot delete a run's checkpoints; rollback needs the Redis saver")


async def _stop(runtime: ApiRuntime, run: RunRecord, *, rollback: bool) -> bool:
    """Stop a run on whichever replica executes it; with `rollback`, delete it and what it
    wrote. False if no replica stopped it in time."""
    if not await runtime.executor.stop(run.run_id):
        return False
    if rollback:
        await runtime.checkpointer.adelete_for_runs([run.run_id])
        await runtime.store.delete_run(run)
        await runtime.executor.settle(run.assistant_id, run.thread_id)
    return True


@router.post("/threads/{thread_id}/runs")
async def create_run(thread_id: str, body: RunCreate, request: Request) -> RunRecord:
    """Start a run in the background; answers at once."""
    return await _start(request, thread_id, body)


@router.post(
    "/threads/{thread_id}/runs/stream",
    response_class=StreamingResponse,
    responses=SSE_RESPONSE,
)
async def stream_run(thread_id: str, body: RunCreate, request: Request) -> StreamingResponse:
    """Start a run and stream its events (SSE) until it stops; `on_disconnect="cancel"`
    cancels the run when the client goes away first."""
    runtime = runtime_of(request)
    run = await _start(request, thread_id, body)
    # Subscribing registers the queue before its first await, and the run has not had a
    # chance to publish yet: nothing is missed. Kept events may reach this process only
    # through Redis, so they are read back from the first.
    after = FROM_START if body.stream_resumable else None
    queue = await runtime.executor.events.subscribe(run.run_id, after)
    cancel = body.on_disconnect == "cancel"
    return _sse(request, run.run_id, queue, cancel_run=run.run_id if cancel else None,
                location=_stream_path(run))  # fmt: skip


@router.get(
    "/threads/{thread_id}/runs/{run_id}/stream",
    response_class=StreamingResponse,
    responses=SSE_RESPONSE,
)
async def join_stream(
    thread_id: str,
    run_id: str,
    request: Request,
    cancel_on_disconnect: bool = False,
    last_event_id: str | None = LAST_EVENT_ID,
) -> StreamingResponse:
    """Stream the events of a run under way, whichever replica executes it: from now on, or,
    for a run started with `stream_resumable`, after the event `Last-Event-ID` names (`-1`:
    from its first event)."""
    runtime = runtime_of(request)
    run = await _run_or_404(request, thread_id, run_id)
    if last_event_id is not None:
        _check_resumable(run, last_event_id)
    queue = await runtime.executor.events.subscribe(run_id, last_event_id)
    # Read the status after subscribing, so an end in between is not missed.
    run = await _run_or_404(request, thread_id, run_id)
    if run.status not in ("pending", "running"):
        queue.put_nowait(end_event(run_id, run.status))
    return _sse(request, run_id, queue, cancel_run=run_id if cancel_on_disconnect else None,
                location=_stream_path(run))  # fmt: skip


def _check_resumable(run: RunRecord, last_event_id: str) -> None:
    if not valid_event_id(last_event_id):
        raise bad_request(f"Last-Event-ID {last_event_id!r} is not an event id of this server")
    if not resumable(run):
        raise conflict(
            f"run {run.run_id} was not started with stream_resumable=true: its events are not"
            " kept; join without Last-Event-ID for its events from now on"
        )


def _stream_path(run: RunRecord) -> str:
    """Where a client that lost a run's stream joins it again (the SDK follows `Location`)."""
    return f"/threads/{run.thread_id}/runs/{run.run_id}/stream"


@router.get(
    "/threads/{thread_id}/stream",
    response_class=StreamingResponse,
    responses=SSE_RESPONSE,
)
async def thread_stream(
    thread_id: str, request: Request, last_event_id: str | None = LAST_EVENT_ID
) -> StreamingResponse:
    """Stream everything that happens on the thread from now on: its runs' events and the
    progress of its background tasks (`custom` events), until the client goes away."""
    runtime = runtime_of(request)
    await thread_or_404(request, thread_id)
    if last_event_id is not None:
        raise bad_request(
            "thread streams are live only and cannot resume from an event id;"
            " join a run started with stream_resumable=true instead"
        )
    channel = thread_channel(thread_id)
    queue = await runtime.executor.events.subscribe(channel)
    return _sse(request, channel, queue, hello={"thread_id": thread_id})


def _sse(
    request: Request,
    channel: str,
    queue: asyncio.Queue[Event],
    *,
    hello: dict[str, Any] | None = None,
    cancel_run: str | None = None,
    location: str | None = None,
) -> StreamingResponse:
    """The channel's events as SSE frames; if the client leaves before the end, cancel
    `cancel_run` (when given). `location` is where the client may join again."""
    runtime = runtime_of(request)

    async def frames() -> AsyncIterator[bytes]:
        ended = False
        # A client that leaves while no event is due is noticed only by listening for it:
        # the server learns of a closed connection from a write, and a run may be silent
        # for as long as a tool takes.
        gone = asyncio.ensure_future(_disconnected(request)) if cancel_run else None
        try:
            yield _frame(Event("metadata", hello or {"run_id": channel, "attempt": 1}))
            while not ended and (event := await _next_event(queue, gone)) is not None:
                yield _frame(event)
                ended = event.name in (END, "error")
        finally:
            if gone is not None:
                gone.cancel()
            runtime.executor.events.unsubscribe(channel, queue)
            if cancel_run is not None and not ended:
                # Cancelled with the response: the cancel must be a task of its own.
                runtime.executor.spawn(_cancel_left_run(runtime, cancel_run))

    headers = {"Location": location} if location else None
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)


async def _next_event(
    queue: asyncio.Queue[Event], gone: asyncio.Future[None] | None
) -> Event | None:
    """The next event, or None once the client has gone (when `gone` watches for that)."""
    if gone is None:
        return await queue.get()
    getter = asyncio.ensure_future(queue.get())
    waited: set[asyncio.Future[Any]] = {getter, gone}
    await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    return None


async def _cancel_left_run(runtime: ApiRuntime, run_id: str) -> None:
    if await runtime.executor.stop(run_id):
        log.info("run %s cancelled: its client disconnected", run_id)


def _frame(event: Event) -> bytes:
    frame = b"event: %s\ndata: %s\n\n" % (event.name.encode(), to_json(event.data))
    return frame if event.id is None else b"id: %s\n%s" % (event.id.encode(), frame)


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: str, body: RunCreate, request: Request) -> dict[str, Any]:
    """Start a run and answer with the thread's values when it stops; `on_disconnect="cancel"`
    cancels the run when the client goes away first."""
    runtime = runtime_of(request)
    run = await _start(request, thread_id, body)
    if body.on_disconnect == "continue":
        return await _outcome(runtime, run.run_id)
    outcome = asyncio.ensure_future(_outcome(runtime, run.run_id))
    gone = asyncio.ensure_future(_disconnected(request))
    await asyncio.wait({outcome, gone}, return_when=asyncio.FIRST_COMPLETED)
    gone.cancel()
    if not outcome.done():
        outcome.cancel()
        await _cancel_left_run(runtime, run.run_id)
        return {}  # nobody is listening any more
    return outcome.result()


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: str, run_id: str, request: Request) -> dict[str, Any]:
    """Wait until the run stops; the thread's values then."""
    runtime = runtime_of(request)
    await _run_or_404(request, thread_id, run_id)
    return await _outcome(runtime, run_id)


async def _outcome(runtime: ApiRuntime, run_id: str) -> dict[str, Any]:
    run, snapshot = await runtime.executor.join(run_id)
    if run is None:
        raise not_found("run", run_id)
    if run.status == "error":
        return {"__error__": {"error": "RunError", "message": run.error}}
    if snapshot is None:
        graph = runtime.graphs[run.assistant_id]
        snapshot = await graph.aget_state(thread_config(run.thread_id))
    values: dict[str, Any] = dict(snapshot.values) if isinstance(snapshot.values, dict) else {}
    result: dict[str, Any] = jsonable_encoder(values)
    if snapshot.interrupts:
        result["__interrupt__"] = [interrupt_json(item) for item in snapshot.interrupts]
    return result


async def _run_or_404(request: Request, thread_id: str, run_id: str) -> RunRecord:
    runtime = runtime_of(request)
    await thread_or_404(request, thread_id)
    run = await runtime.store.get_run(run_id)
    if run is None or run.thread_id != thread_id:
        raise not_found("run", run_id)
    return run


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str, request: Request, limit: int = 10, offset: int = 0, status: str | None = None
) -> list[RunRecord]:
    """The thread's runs, newest first (resumes by background tasks included)."""
    runtime = runtime_of(request)
    await thread_or_404(request, thread_id)
    runs = list(reversed(await runtime.store.runs_of(thread_id)))
    matching = [run for run in runs if status in (None, run.status)]
    return matching[max(offset, 0) : max(offset, 0) + max(limit, 0)]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, request: Request) -> RunRecord:
    """One run."""
    return await _run_or_404(request, thread_id, run_id)


@router.post(
    "/threads/{thread_id}/runs/{run_id}/cancel",
    status_code=202,
    responses={204: {"description": "cancelled (with wait=true)"}},
)
async def cancel_run(
    thread_id: str,
    run_id: str,
    request: Request,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    """Stop a pending or running run; `rollback` also deletes what it wrote."""
    runtime = runtime_of(request)
    run = await _run_or_404(request, thread_id, run_id)
    if run.status not in ("pending", "running"):
        raise conflict(f"run {run_id} already ended ({run.status})")
    if action == "rollback":
        _check_rollback(runtime)
    if not await _stop(runtime, run, rollback=action == "rollback"):
        raise conflict(f"no replica stopped run {run_id} in {STOP_WAIT:g} s; try again")
    return Response(status_code=204 if wait else 202)
