"""Loads the served graphs from `module:function` specs in settings (`GRAPHRELAY_GRAPHS`).

A factory is called as `factory(checkpointer, settings)` and returns a compiled graph.
Specs that name modules from before the layout of 0.2 (`graphrelay.orchestrator.*`) still load
for one release, with a `GraphrelayDeprecationWarning` naming the new spec.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from graphrelay.config import Settings
from graphrelay.errors import GraphLoadError, GraphrelayDeprecationWarning
from graphrelay.server.ports import Graph

GraphFactory = Callable[[BaseCheckpointSaver[Any], Settings], Graph]
# Old module prefix → new one; removed in the release after 0.2.
MOVED_MODULES = {"graphrelay.orchestrator.": "graphrelay.graphs."}


def current_spec(spec: str) -> str:
    """`spec` with a module path that moved rewritten to where it lives now (and a warning)."""
    for old, new in MOVED_MODULES.items():
        if spec.startswith(old):
            moved = new + spec.removeprefix(old)
            warnings.warn(
                f"graph spec {spec!r} names a module that moved: use {moved!r}; the old name "
                "stops working in the next release",
                GraphrelayDeprecationWarning,
                stacklevel=2,
            )
            return moved
    return spec


def load_factory(spec: str) -> GraphFactory:
    """Import `module:function`; a clear `GraphLoadError` when either is missing."""
    module_name, _, attribute = current_spec(spec).partition(":")
    if not attribute:
        raise GraphLoadError(f"graph spec {spec!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise GraphLoadError(
            f"cannot import {module_name} (from graph spec {spec!r}): {exc}"
        ) from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise GraphLoadError(
            f"{module_name} has no callable {attribute!r} (from graph spec {spec!r})"
        )
    return factory  # type: ignore[no-any-return]


def build_graphs(settings: Settings, checkpointer: BaseCheckpointSaver[Any]) -> dict[str, Graph]:
    """Graph id → compiled graph, each compiled with `checkpointer`."""
    return {
        graph_id: load_factory(spec)(checkpointer, settings)
        for graph_id, spec in settings.graphs.items()
    }
