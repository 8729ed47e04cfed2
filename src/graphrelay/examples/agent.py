"""The example agent: LangChain's `create_agent` with every tool of the configured modules."""

from __future__ import annotations

import importlib
from typing import Any

from langchain.agents import create_agent
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver

from graphrelay.config import Settings
from graphrelay.orchestrator.models import load_chat_model
from graphrelay.orchestrator.registry import Graph

SYSTEM_PROMPT = (
    "You are a research assistant. Slow tools run in the background while you wait; "
    "when a tool reports an error, explain it and carry on with what you have."
)


def configured_tools(settings: Settings) -> list[BaseTool]:
    """The `TOOLS` of every module in `settings.tool_modules`, in order."""
    tools: list[BaseTool] = []
    for module_name in settings.tool_modules:
        module = importlib.import_module(module_name)
        module_tools = getattr(module, "TOOLS", None)
        if module_tools is None:
            raise ValueError(f"tool module {module_name} has no TOOLS list")
        tools.extend(module_tools)
    return tools


def build_graph(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """The example agent, compiled with `checkpointer`."""
    graph: Graph = create_agent(
        model=load_chat_model(settings.model),
        tools=configured_tools(settings),
        system_prompt=SYSTEM_PROMPT,
        checkpointer=checkpointer,
    )
    return graph
