"""Threads and their state, in the paths and shapes of the LangGraph Agent Server API."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from graphrelay.api.deps import authenticate, engine_of, tenant_of, thread_or_404
from graphrelay.api.errors import conflict, documented, not_found
from graphrelay.api.serialize import checkpoint_json, state_json
from graphrelay.server import checkpoints, lifetime
from graphrelay.server.checkpoints import thread_config
from graphrelay.server.engine import Engine
from graphrelay.server.ports import Graph
from graphrelay.server.records import ThreadRecord, now
from graphrelay.server.status import status_of

router = APIRouter(
    dependencies=[Depends(authenticate)], responses=documented(400, 401, 404, 409), tags=["threads"]
)


class ThreadCreate(BaseModel):
    """Body of `POST /threads`."""

    model_config = {"extra": "ignore"}

    thread_id: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadPatch(BaseModel):
    """Body of `PATCH /threads/{thread_id}`."""

    metadata: dict[str, Any] = Field(default_factory=dict)


class ThreadSearch(BaseModel):
    """Body of `POST /threads/search`."""

    model_config = {"extra": "ignore"}

    metadata: dict[str, Any] = Field(default_factory=dict)
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class CheckpointRef(BaseModel):
    """A checkpoint as clients name it."""

    model_config = {"extra": "ignore"}

    checkpoint_id: str | None = None
    checkpoint_ns: str = ""


class HistoryQuery(BaseModel):
    """Body of `POST /threads/{thread_id}/history`."""

    model_config = {"extra": "ignore"}

    limit: int = Field(default=10, ge=1, le=1000)
    before: CheckpointRef | str | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None


class StateUpdate(BaseModel):
    """Body of `POST /threads/{thread_id}/state`: new values, written as a node would."""

    model_config = {"extra": "ignore"}

    values: dict[str, Any] | list[dict[str, Any]] | None = None
    as_node: str | None = None
    checkpoint_id: str | None = None
    checkpoint: CheckpointRef | None = None


class StateAt(BaseModel):
    """Body of `POST /threads/{thread_id}/state/checkpoint`."""

    checkpoint: CheckpointRef
    subgraphs: bool = False


def _graph(engine: Engine, thread: ThreadRecord) -> Graph | None:
    return engine.graphs.get(thread.graph_id) if thread.graph_id else None


def _at(thread_id: str, checkpoint_id: str | None, ns: str = "") -> Any:
    config = thread_config(thread_id)
    if checkpoint_id:
        config["configurable"].update(checkpoint_id=checkpoint_id, checkpoint_ns=ns)
    return config


@router.post("/threads")
async def create_thread(body: ThreadCreate, request: Request) -> dict[str, Any]:
    """Create a thread (or return it with `if_exists="do_nothing"`)."""
    engine = engine_of(request)
    if body.thread_id is not None:
        existing = await engine.store.get_thread(body.thread_id)
        if existing is not None:
            # Another tenant's id is taken all the same, but the answer must not say whose.
            if body.if_exists == "do_nothing" and existing.tenant == tenant_of(request):
                return await _thread_json(engine, existing)
            raise conflict(f"thread {body.thread_id} already exists")
    thread = ThreadRecord(metadata=body.metadata, tenant=tenant_of(request))
    if body.thread_id is not None:
        thread.thread_id = body.thread_id
    await engine.store.put_thread(thread)
    return await _thread_json(engine, thread)


@router.post("/threads/search")
async def search_threads(body: ThreadSearch, request: Request) -> list[dict[str, Any]]:
    """Threads whose metadata holds every given pair (and with the given status)."""
    engine = engine_of(request)
    threads = await engine.store.threads()
    matching = [
        t for t in reversed(threads)
        if t.tenant == tenant_of(request) and body.status in (None, t.status)
        and all(t.metadata.get(k) == v for k, v in body.metadata.items())
    ]  # fmt: skip
    page = matching[body.offset : body.offset + body.limit]
    return [await _thread_json(engine, thread) for thread in page]


async def _thread_json(engine: Engine, thread: ThreadRecord) -> dict[str, Any]:
    result = thread.model_dump(mode="json", exclude={"graph_id", "tenant"})
    result.update(values={}, interrupts={})
    graph = _graph(engine, thread)
    if graph is not None:
        snapshot = await graph.aget_state(thread_config(thread.thread_id))
        state = state_json(snapshot)
        result["values"] = state["values"]
        result["interrupts"] = {
            task["id"]: task["interrupts"] for task in state["tasks"] if task["interrupts"]
        }
    return result


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: str, request: Request) -> dict[str, Any]:
    """A thread with its current values and interrupts."""
    engine = engine_of(request)
    return await _thread_json(engine, await thread_or_404(request, thread_id))


@router.patch("/threads/{thread_id}")
async def update_thread(thread_id: str, body: ThreadPatch, request: Request) -> dict[str, Any]:
    """Merge metadata into the thread's."""
    engine = engine_of(request)
    thread = await thread_or_404(request, thread_id)
    thread.metadata.update(body.metadata)
    thread.updated_at = now()
    await engine.store.put_thread(thread)
    return await _thread_json(engine, thread)


@router.delete("/threads/{thread_id}", status_code=204)
async def delete_thread(thread_id: str, request: Request) -> Response:
    """Delete the thread from every store: its runs, checkpoints and background calls (those
    still running are revoked and closed)."""
    engine = engine_of(request)
    thread = await thread_or_404(request, thread_id)
    busy = f"thread {thread_id} is busy; cancel its run first"
    if thread.status == "busy":
        raise conflict(busy)
    if not await lifetime.delete_thread(engine, thread_id):
        raise conflict(busy)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/copy")
async def copy_thread(thread_id: str, request: Request) -> dict[str, Any]:
    """A new thread with the same metadata and every checkpoint of this one."""
    engine = engine_of(request)
    source = await thread_or_404(request, thread_id)
    copy = ThreadRecord(
        metadata=dict(source.metadata), graph_id=source.graph_id, tenant=source.tenant
    )
    copy.status = "idle" if source.status == "busy" else source.status
    await checkpoints.copy_thread(engine.checkpointer, thread_id, copy.thread_id)
    await engine.store.put_thread(copy)
    return await _thread_json(engine, copy)


@router.get("/threads/{thread_id}/state")
async def get_state(thread_id: str, request: Request, subgraphs: bool = False) -> dict[str, Any]:
    """The thread's latest state."""
    return await _state(request, thread_id, None, "", subgraphs)


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at(
    thread_id: str, checkpoint_id: str, request: Request, subgraphs: bool = False
) -> dict[str, Any]:
    """The thread's state at one checkpoint."""
    return await _state(request, thread_id, checkpoint_id, "", subgraphs)


@router.post("/threads/{thread_id}/state/checkpoint")
async def post_state_at(thread_id: str, body: StateAt, request: Request) -> dict[str, Any]:
    """The thread's state at the checkpoint the body names."""
    ref = body.checkpoint
    return await _state(request, thread_id, ref.checkpoint_id, ref.checkpoint_ns, body.subgraphs)


async def _state(
    request: Request, thread_id: str, checkpoint_id: str | None, ns: str, subgraphs: bool
) -> dict[str, Any]:
    engine = engine_of(request)
    thread = await thread_or_404(request, thread_id)
    graph = _graph(engine, thread)
    if graph is None:
        return _empty_state(thread_id)
    snapshot = await graph.aget_state(_at(thread_id, checkpoint_id, ns), subgraphs=subgraphs)
    if checkpoint_id and not snapshot.config:
        raise not_found("checkpoint", checkpoint_id)
    return state_json(snapshot)


def _empty_state(thread_id: str) -> dict[str, Any]:
    checkpoint = {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None}
    return {
        "values": {}, "next": [], "checkpoint": {**checkpoint, "checkpoint_map": None},
        "metadata": {}, "created_at": None, "parent_checkpoint": None, "tasks": [],
        "interrupts": [],
    }  # fmt: skip


@router.post("/threads/{thread_id}/state")
async def update_state(thread_id: str, body: StateUpdate, request: Request) -> dict[str, Any]:
    """Write values as if `as_node` had; from an older checkpoint this forks the thread."""
    engine = engine_of(request)
    thread = await thread_or_404(request, thread_id)
    graph = _graph(engine, thread)
    if graph is None:
        raise conflict(f"thread {thread_id} has no state yet; start a run first")
    checkpoint_id = body.checkpoint_id or (
        body.checkpoint.checkpoint_id if body.checkpoint else None
    )
    await _not_busy(engine, thread_id)  # at once, rather than after the run, for the lock
    async with engine.executor.locks.hold(thread_id):
        # No graph call runs on the thread while the lock is held; a run that claims the
        # thread from now on waits for the lock, so it runs after this update.
        await _not_busy(engine, thread_id)
        config = await graph.aupdate_state(
            _at(thread_id, checkpoint_id), body.values, as_node=body.as_node
        )
        snapshot = await graph.aget_state(thread_config(thread_id))
        await engine.store.settle_thread(thread_id, status_of(snapshot))
    return {"checkpoint": checkpoint_json(config)}


async def _not_busy(engine: Engine, thread_id: str) -> None:
    """409 while a run is active on the thread."""
    if await engine.store.active_runs(thread_id):
        raise conflict(f"thread {thread_id} is busy with a run")


@router.post("/threads/{thread_id}/history")
async def history(thread_id: str, body: HistoryQuery, request: Request) -> list[dict[str, Any]]:
    """Past states, newest first."""
    engine = engine_of(request)
    thread = await thread_or_404(request, thread_id)
    graph = _graph(engine, thread)
    if graph is None:
        return []
    before = body.before if isinstance(body.before, str) else (
        body.before.checkpoint_id if body.before else None
    )  # fmt: skip
    start = body.checkpoint.checkpoint_id if body.checkpoint else None
    snapshots = graph.aget_state_history(
        _at(thread_id, start),
        filter=body.metadata,
        before=_at(thread_id, before) if before else None,
        limit=body.limit,
    )
    return [state_json(snapshot) async for snapshot in snapshots]
