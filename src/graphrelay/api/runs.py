"""Runs on threads, in the paths and shapes of the LangGraph Agent Server API.

A run executes in this process as an asyncio task. When the agent suspends on background
tools the run ends (`success`) with the thread `interrupted`; the thread then resumes by itself
in runs of its own (`metadata.resumed_by == "background_tasks"`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse
from pydantic import ConfigDict

from graphrelay.api.deps import authenticate, engine_of, run_or_404, thread_or_404
from graphrelay.api.errors import bad_request, conflict, documented, not_found
from graphrelay.api.serialize import interrupt_json
from graphrelay.api.sse import (
    LAST_EVENT_ID,
    SSE_RESPONSE,
    cancel_left_run,
    disconnected,
    sse_response,
)
from graphrelay.bridge.resume import is_resume_map, pending_task_ids
from graphrelay.server import checkpoints
from graphrelay.server.checkpoints import thread_config
from graphrelay.server.engine import Engine
from graphrelay.server.executor import STOP_WAIT
from graphrelay.server.records import ACTIVE, RunOptions, RunRecord, RunView, ThreadRecord
from graphrelay.server.store import Claim, IfBusy, IfInterrupted
from graphrelay.server.streaming import FROM_START, end_event, thread_channel, valid_event_id

log = logging.getLogger(__name__)
MAKE_ROOM_ATTEMPTS = 5  # for interrupt and rollback: runs that come meanwhile are stopped too

router = APIRouter(
    dependencies=[Depends(authenticate)], responses=documented(400, 401, 404, 409), tags=["runs"]
)


class RunCreate(RunOptions):
    """Body of `POST /threads/{thread_id}/runs` (fields graphrelay does not use are ignored)."""

    model_config = ConfigDict(extra="ignore")

    assistant_id: str


async def _start(request: Request, thread_id: str, body: RunCreate) -> RunRecord:
    """Claim the thread for a new run and start it: checking the thread's state and claiming
    it is one atomic step (`RunStore.claim`), so of two requests that find the same thread
    free only one starts; the other meets the multitask strategy."""
    engine = engine_of(request)
    thread = await thread_or_404(request, thread_id)
    if body.assistant_id not in engine.graphs:
        raise not_found("assistant", body.assistant_id)
    await _check_bare_resume(engine, thread, body)
    run = RunRecord(
        thread_id=thread_id,
        assistant_id=body.assistant_id,
        metadata=body.metadata,
        options=RunOptions.model_validate(body.model_dump()),
    )
    checkpoint_id, strategy = body.start_checkpoint, body.multitask_strategy
    if_busy: IfBusy = "queue" if strategy == "enqueue" else "refuse"
    resumes = body.command is not None or checkpoint_id is not None
    if_interrupted: IfInterrupted = "allow" if resumes else "refuse"
    for _ in range(MAKE_ROOM_ATTEMPTS):
        claim = await engine.executor.start(
            run, checkpoint_id, if_busy=if_busy, if_interrupted=if_interrupted
        )
        if claim.claimed:
            return run
        if claim.refused != "busy" or strategy == "reject":
            raise _refused(thread_id, claim)
        await _make_room(engine, claim.active, rollback=strategy == "rollback")
        # As on a thread found busy before: its interrupts do not hold this run back.
        if_interrupted = "allow"
    raise conflict(f"thread {thread_id} kept getting new runs while this one made room; try again")


async def _check_bare_resume(engine: Engine, thread: ThreadRecord, body: RunCreate) -> None:
    """409 for a resume value not addressed to an interrupt while a background call waits:
    LangGraph would keep it for whichever `interrupt()` asks next, which is not the caller's
    question. Background calls resume by themselves; a human interrupt is answered by id."""
    resume = body.command.resume if body.command is not None else None
    if resume is None or is_resume_map(resume) or thread.graph_id is None:
        return
    state = await engine.graphs[thread.graph_id].aget_state(thread_config(thread.thread_id))
    waiting = pending_task_ids(state.interrupts)
    if waiting:
        raise conflict(
            f"thread {thread.thread_id} waits on {len(waiting)} background call(s), which resume"
            " it by themselves; answer a human interrupt by its id:"
            " command={'resume': {interrupt_id: value}}"
        )


def _refused(thread_id: str, claim: Claim) -> HTTPException:
    """The 409 (or 404) for a claim refused."""
    if claim.refused == "gone":
        return not_found("thread", thread_id)
    if claim.refused == "other-assistant" and claim.thread is not None:
        return conflict(f"thread {thread_id} belongs to assistant {claim.thread.graph_id}")
    if claim.refused == "interrupted":
        return conflict(
            f"thread {thread_id} waits on interrupts; resume it with command={{'resume': ...}}"
        )
    if claim.refused == "busy":
        return conflict(f"thread {thread_id} is busy with another run (multitask_strategy=reject)")
    return conflict(f"thread {thread_id} kept changing while this run was starting; try again")


async def _make_room(engine: Engine, active: Sequence[RunRecord], *, rollback: bool) -> None:
    """Stop (with `rollback`, also delete) the runs active on a busy thread, wherever they
    execute; 409 if no replica stops one in time."""
    if rollback:
        _check_rollback(engine)
    for run in active:
        if not await _stop(engine, run, rollback=rollback):
            raise conflict(f"no replica stopped run {run.run_id} in {STOP_WAIT:g} s; try again")


def _check_rollback(engine: Engine) -> None:
    if not checkpoints.supports(engine.checkpointer, "adelete_for_runs"):
        name = type(engine.checkpointer).__name__
        raise conflict(f"{name} cannot delete a run's checkpoints; rollback needs the Redis saver")


async def _stop(engine: Engine, run: RunRecord, *, rollback: bool) -> bool:
    """Stop a run on whichever replica executes it; with `rollback`, delete it and what it
    wrote. False if no replica stopped it in time."""
    if not await engine.executor.stop(run.run_id):
        return False
    if rollback:
        await engine.checkpointer.adelete_for_runs([run.run_id])
        await engine.executor.events.forget([run.run_id])
        await engine.store.delete_run(run)
        await engine.executor.settle(run.assistant_id, run.thread_id)
    return True


@router.post("/threads/{thread_id}/runs")
async def create_run(thread_id: str, body: RunCreate, request: Request) -> RunView:
    """Start a run in the background; answers at once."""
    return (await _start(request, thread_id, body)).view()


@router.post(
    "/threads/{thread_id}/runs/stream",
    response_class=StreamingResponse,
    responses=SSE_RESPONSE,
)
async def stream_run(thread_id: str, body: RunCreate, request: Request) -> StreamingResponse:
    """Start a run and stream its events (SSE) until it stops; `on_disconnect="cancel"`
    cancels the run when the client goes away first."""
    engine = engine_of(request)
    run = await _start(request, thread_id, body)
    # Subscribing registers the queue before its first await, and the run has not had a
    # chance to publish yet: nothing is missed. Kept events may reach this process only
    # through Redis, so they are read back from the first.
    after = FROM_START if body.stream_resumable else None
    queue = await engine.executor.events.subscribe(run.run_id, after)
    cancel = body.on_disconnect == "cancel"
    return sse_response(request, run.run_id, queue, cancel_run=run.run_id if cancel else None,
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
    engine = engine_of(request)
    run = await run_or_404(request, thread_id, run_id)
    if last_event_id is not None:
        _check_resumable(run, last_event_id)
    queue = await engine.executor.events.subscribe(run_id, last_event_id)
    # Read the status after subscribing, so an end in between is not missed.
    run = await run_or_404(request, thread_id, run_id)
    if run.status not in ACTIVE:
        queue.put_nowait(end_event(run_id, run.status))
    cancel = run_id if cancel_on_disconnect else None
    return sse_response(request, run_id, queue, cancel_run=cancel, location=_stream_path(run))


def _check_resumable(run: RunRecord, last_event_id: str) -> None:
    if not valid_event_id(last_event_id):
        raise bad_request(f"Last-Event-ID {last_event_id!r} is not an event id of this server")
    if not run.resumable:
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
    engine = engine_of(request)
    await thread_or_404(request, thread_id)
    if last_event_id is not None:
        raise bad_request(
            "thread streams are live only and cannot resume from an event id;"
            " join a run started with stream_resumable=true instead"
        )
    channel = thread_channel(thread_id)
    queue = await engine.executor.events.subscribe(channel)
    return sse_response(request, channel, queue, hello={"thread_id": thread_id})


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: str, body: RunCreate, request: Request) -> dict[str, Any]:
    """Start a run and answer with the thread's values when it stops; `on_disconnect="cancel"`
    cancels the run when the client goes away first."""
    engine = engine_of(request)
    run = await _start(request, thread_id, body)
    if body.on_disconnect == "continue":
        return await _outcome(engine, run.run_id)
    outcome = asyncio.ensure_future(_outcome(engine, run.run_id))
    gone = asyncio.ensure_future(disconnected(request))
    await asyncio.wait({outcome, gone}, return_when=asyncio.FIRST_COMPLETED)
    gone.cancel()
    if not outcome.done():
        outcome.cancel()
        await cancel_left_run(engine, run.run_id)
        return {}  # nobody is listening any more
    return outcome.result()


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: str, run_id: str, request: Request) -> dict[str, Any]:
    """Wait until the run stops; the thread's values then."""
    engine = engine_of(request)
    await run_or_404(request, thread_id, run_id)
    return await _outcome(engine, run_id)


async def _outcome(engine: Engine, run_id: str) -> dict[str, Any]:
    run, snapshot = await engine.executor.join(run_id)
    if run is None:
        raise not_found("run", run_id)
    if run.status == "error":
        return {"__error__": {"error": "RunError", "message": run.error}}
    if snapshot is None:
        graph = engine.graphs[run.assistant_id]
        snapshot = await graph.aget_state(thread_config(run.thread_id))
    values: dict[str, Any] = dict(snapshot.values) if isinstance(snapshot.values, dict) else {}
    result: dict[str, Any] = jsonable_encoder(values)
    if snapshot.interrupts:
        result["__interrupt__"] = [interrupt_json(item) for item in snapshot.interrupts]
    return result


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str, request: Request, limit: int = 10, offset: int = 0, status: str | None = None
) -> list[RunView]:
    """The thread's runs, newest first (resumes by background tasks included)."""
    engine = engine_of(request)
    await thread_or_404(request, thread_id)
    runs = list(reversed(await engine.store.runs_of(thread_id)))
    matching = [run for run in runs if status in (None, run.status)]
    return [run.view() for run in matching[max(offset, 0) : max(offset, 0) + max(limit, 0)]]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, request: Request) -> RunView:
    """One run."""
    return (await run_or_404(request, thread_id, run_id)).view()


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
    engine = engine_of(request)
    run = await run_or_404(request, thread_id, run_id)
    if run.status not in ACTIVE:
        raise conflict(f"run {run_id} already ended ({run.status})")
    if action == "rollback":
        _check_rollback(engine)
    if not await _stop(engine, run, rollback=action == "rollback"):
        raise conflict(f"no replica stopped run {run_id} in {STOP_WAIT:g} s; try again")
    return Response(status_code=204 if wait else 202)
