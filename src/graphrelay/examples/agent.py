"""The example agent: LangChain's `create_agent` with every tool of the configured modules."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langgraph.checkpoint.base import BaseCheckpointSaver

from graphrelay.config import Settings
from graphrelay.graphs.chat_models import load_chat_model
from graphrelay.graphs.tools import configured_tools
from graphrelay.server.ports import Graph

SYSTEM_PROMPT = (
    "You are a research assistant. Slow tools run in the background while you wait; "
    "when a tool reports an error, explain it and carry on with what you have."
)


def build_graph(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """The example agent, compiled with `checkpointer`."""
    graph: Graph = create_agent(
        model=load_chat_model(settings.model),
        tools=configured_tools(settings),
        system_prompt=SYSTEM_PROMPT,
        checkpointer=checkpointer,
    )
    return graph
