"""Assistants: one per served graph, with the Agent Server's read endpoints.

graphrelay's assistants are its configured graphs (`GRAPHRELAY_GRAPHS`); they cannot be
created or versioned through the API, so every assistant is version 1 of itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from graphrelay.api.deps import authenticate, engine_of
from graphrelay.api.errors import documented, not_found
from graphrelay.server.ports import Graph

router = APIRouter(
    dependencies=[Depends(authenticate)], responses=documented(400, 401, 404), tags=["assistants"]
)

# Assistants exist as long as the process serves their graph.
SERVED_SINCE = datetime.now(tz=UTC)


class AssistantSearch(BaseModel):
    """Body of `POST /assistants/search`."""

    model_config = {"extra": "ignore"}

    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


def _assistant(graph_id: str) -> dict[str, Any]:
    return {
        "assistant_id": graph_id, "graph_id": graph_id, "name": graph_id,
        "description": None, "config": {}, "context": {}, "metadata": {},
        "version": 1, "created_at": SERVED_SINCE, "updated_at": SERVED_SINCE,
    }  # fmt: skip


def _graph(request: Request, assistant_id: str) -> Graph:
    engine = engine_of(request)
    graph = engine.graphs.get(assistant_id)
    if graph is None:
        raise not_found("assistant", assistant_id)
    return graph


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearch, request: Request) -> list[dict[str, Any]]:
    """The served graphs, as assistants, filtered by graph id or name."""
    engine = engine_of(request)
    found = [
        _assistant(graph_id)
        for graph_id in engine.graphs
        if body.graph_id in (None, graph_id) and body.name in (None, graph_id)
        and not body.metadata
    ]  # fmt: skip
    return found[body.offset : body.offset + body.limit]


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, request: Request) -> dict[str, Any]:
    """One assistant."""
    _graph(request, assistant_id)
    return _assistant(assistant_id)


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(
    assistant_id: str, request: Request, xray: bool = False
) -> dict[str, Any]:
    """The graph's nodes and edges."""
    drawable = _graph(request, assistant_id).get_graph(xray=xray)
    result: dict[str, Any] = drawable.to_json()
    return result


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, request: Request) -> dict[str, Any]:
    """JSON schemas of the graph's input, output, state and context."""
    graph = _graph(request, assistant_id)
    return {
        "graph_id": assistant_id,
        "input_schema": graph.get_input_jsonschema(),
        "output_schema": graph.get_output_jsonschema(),
        "state_schema": graph.get_output_jsonschema(),
        "config_schema": None,
        "context_schema": graph.get_context_jsonschema(),
    }
