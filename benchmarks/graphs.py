"""Graphs and tools the API benchmark serves (imported by the API and workers it starts)."""

from __future__ import annotations

import time
from typing import Any, TypedDict

from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph

from graphrelay.bridge import background_tool
from graphrelay.config import Settings
from graphrelay.server.ports import Graph


class Nothing(TypedDict, total=False):
    """State of the graph that does no work."""

    done: bool


def build_noop(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """One node that returns at once: what is left is the API's own cost."""
    builder = StateGraph(Nothing)
    builder.add_node("noop", lambda state: {"done": True})
    builder.add_edge(START, "noop")
    graph: Graph = builder.compile(checkpointer=checkpointer)
    return graph


@background_tool(queue="io", idempotent=True, timeout=120)
def wait_seconds(seconds: float) -> str:
    """Wait `seconds` on an io worker (a stand-in for a slow external call)."""
    time.sleep(seconds)
    return f"waited {seconds} s"


TOOLS: list[BaseTool] = [wait_seconds.tool]
