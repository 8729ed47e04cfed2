"""Loads the served graphs from `module:function` specs in settings."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel

from graphrelay.config import Settings

# A compiled graph whose state, context, input and output types the API does not know.
Graph = Pregel[Any, Any, Any, Any]
GraphFactory = Callable[[BaseCheckpointSaver[Any], Settings], Graph]


def load_factory(spec: str) -> GraphFactory:
    """Import `module:function`; a clear error when either is missing."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"graph spec {spec!r} must look like 'package.module:function'")
    module = importlib.import_module(module_name)
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"{module_name} has no callable {attribute!r} (from graph spec {spec!r})")
    return factory  # type: ignore[no-any-return]


def build_graphs(settings: Settings, checkpointer: BaseCheckpointSaver[Any]) -> dict[str, Graph]:
    """Graph id → compiled graph, each compiled with `checkpointer`."""
    return {
        graph_id: load_factory(spec)(checkpointer, settings)
        for graph_id, spec in settings.graphs.items()
    }
