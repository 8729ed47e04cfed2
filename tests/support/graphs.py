"""Graph shapes the resume-routing tests serve: several background calls in one LangGraph
task, or in turn in one node, in Send tasks and in a subgraph (graph specs
`tests.support.graphs:build_*`, each a factory `(checkpointer, settings)`)."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Send
from typing_extensions import TypedDict

from graphrelay.config import Settings
from graphrelay.graphs.chat_models import load_chat_model
from graphrelay.graphs.tools import configured_tools
from graphrelay.server.ports import Graph
from tests.support.tools import gate


def _toolnode_agent(settings: Settings) -> StateGraph[Any]:
    """A hand-built agent: the model, then LangGraph's ToolNode, which runs every tool call
    of one AI message in one task."""
    tools = configured_tools(settings)  # the scripted model checks every scripted tool is bound
    model = load_chat_model(settings.model).bind_tools(tools)

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder


def build_toolnode_agent(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """The hand-built ToolNode agent."""
    graph: Graph = _toolnode_agent(settings).compile(checkpointer=checkpointer)
    return graph


def build_subgraph_agent(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """The ToolNode agent as a subgraph node of a parent graph."""
    builder = StateGraph(MessagesState)
    builder.add_node("inner", _toolnode_agent(settings).compile())
    builder.add_edge(START, "inner")
    builder.add_edge("inner", END)
    graph: Graph = builder.compile(checkpointer=checkpointer)
    return graph


class Gates(TypedDict, total=False):
    """Which gates to pass, and what each call returned (gate name → result)."""

    names: list[str]
    results: Annotated[dict[str, str], operator.or_]


def build_sequential(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """A plain node that calls two background tools in turn (`BackgroundTool.acall`)."""

    async def work(state: Gates, config: RunnableConfig) -> dict[str, Any]:
        first = await gate.acall(config, call_id="first", name=state["names"][0])
        second = await gate.acall(config, call_id="second", name=state["names"][1])
        return {"results": {state["names"][0]: first, state["names"][1]: second}}

    builder = StateGraph(Gates)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    graph: Graph = builder.compile(checkpointer=checkpointer)
    return graph


def build_fan_out(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """`Send` fan-out: one task per gate, each calling the tool with the same call id."""

    def fan(state: Gates) -> list[Send]:
        return [Send("one", {"names": [name]}) for name in state["names"]]

    async def one(state: Gates, config: RunnableConfig) -> dict[str, Any]:
        name = state["names"][0]
        return {"results": {name: await gate.acall(config, call_id="gate", name=name)}}

    builder = StateGraph(Gates)
    builder.add_node("one", one)
    builder.add_conditional_edges(START, fan, ["one"])
    builder.add_edge("one", END)
    graph: Graph = builder.compile(checkpointer=checkpointer)
    return graph
