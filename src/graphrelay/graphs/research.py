"""A researcher that spawns analyst sub-agents in parallel, each a subgraph of its own.

The researcher asks its model (structured output) for the angles a question needs and sends
one analyst per angle at once (`Send`). An analyst is its own compiled graph with its own
state schema (topic, question, its agent's messages, findings); it runs an executor agent
(`create_agent` with the configured tools) as a nested subgraph. Analysts keep LangGraph's
default inherited persistence: each invocation checkpoints in a namespace of its own, so
analysts run in parallel, survive a restart, and suspend on background tools like any agent.
Their findings flow back to the researcher through the one key the schemas share.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send
from pydantic import BaseModel, Field

# pydantic needs typing_extensions' TypedDict on 3.11 to make the API's JSON schemas.
from typing_extensions import TypedDict

from graphrelay.config import Settings
from graphrelay.graphs.chat_models import executor_model, planner_model
from graphrelay.graphs.plan_execute.planner import question_of
from graphrelay.graphs.plan_execute.structured import ask
from graphrelay.graphs.tools import configured_tools
from graphrelay.server.ports import Graph

RESEARCHER = """You lead a research team. Split the user's question into the distinct angles
that analysts should investigate independently and at the same time; reasoning first."""
ANALYST = """You are an analyst. Investigate your angle of the question with your tools and
reply with your finding only."""
SYNTHESIS = """Write the answer to the user's question from your analysts' findings."""


class ResearchBrief(BaseModel):
    """The researcher's split of a question into parallel angles."""

    reasoning: str = Field(description="Why these angles, before listing them")
    angles: list[str] = Field(description="Independent angles, one analyst each", min_length=1)


Finding = dict[str, str]


def _findings(current: list[Finding] | None, update: list[Finding] | None) -> list[Finding]:
    """Analysts add findings; `None` (a new question) clears them."""
    return [] if update is None else [*(current or []), *update]


class ResearchState(TypedDict, total=False):
    """The researcher's thread state."""

    messages: Annotated[list[AnyMessage], add_messages]
    brief: dict[str, Any]
    findings: Annotated[list[Finding], _findings]


class AnalystInput(TypedDict):
    """What the researcher sends an analyst."""

    angle: str
    question: str


class AnalystState(TypedDict, total=False):
    """An analyst's own state, checkpointed in its own namespace."""

    angle: str
    question: str
    messages: Annotated[list[AnyMessage], add_messages]
    findings: Annotated[list[Finding], operator.add]


class AnalystOutput(TypedDict):
    """What an analyst hands back: its finding, on the key the researcher shares."""

    findings: Annotated[list[Finding], operator.add]


def build_analyst(model: BaseChatModel, settings: Settings) -> CompiledStateGraph[Any]:
    """brief → investigate (an executor agent) → report."""
    agent = create_agent(
        model=model, tools=configured_tools(settings), system_prompt=ANALYST, name="analyst_agent"
    )

    def brief(state: AnalystState) -> dict[str, Any]:
        text = f"Angle: {state['angle']}\nQuestion: {state['question']}"
        return {"messages": [HumanMessage(content=text)]}

    def report(state: AnalystState) -> dict[str, Any]:
        answer = next(m for m in reversed(state["messages"]) if isinstance(m, AIMessage))
        return {"findings": [{"angle": state["angle"], "finding": str(answer.text)}]}

    builder = StateGraph(AnalystState, input_schema=AnalystInput, output_schema=AnalystOutput)
    builder.add_node("brief", brief)
    builder.add_node("investigate", agent)
    builder.add_node("report", report)
    builder.add_edge(START, "brief")
    builder.add_edge("brief", "investigate")
    builder.add_edge("investigate", "report")
    builder.add_edge("report", END)
    return builder.compile(name="analyst")


class Researcher:
    """Splits the question into angles with structured output."""

    def __init__(self, model: BaseChatModel) -> None:
        self.model = model

    async def __call__(self, state: ResearchState) -> dict[str, Any]:
        """Ask for a ResearchBrief; a bad one ends the run with the reason."""
        reply = await ask(
            self.model,
            ResearchBrief,
            [SystemMessage(RESEARCHER), HumanMessage(content=question_of(state))],
        )
        if reply.parsed is None:
            failure = f"I could not split the question into angles: {reply.error}"
            return {"messages": [AIMessage(content=failure)], "brief": {}, "findings": None}
        return {"brief": reply.parsed.model_dump(), "findings": None}


def spawn_analysts(state: ResearchState) -> list[Send] | str:
    """One analyst per angle, all at once."""
    angles = state.get("brief", {}).get("angles", [])
    if not angles:
        return END
    question = question_of(state)
    return [Send("analyst", AnalystInput(angle=a, question=question)) for a in angles]


class Synthesizer:
    """Writes the answer from every finding."""

    def __init__(self, model: BaseChatModel) -> None:
        self.model = model

    async def __call__(self, state: ResearchState) -> dict[str, Any]:
        """One model call over the findings."""
        findings = "\n".join(f"- {f['angle']}: {f['finding']}" for f in state.get("findings", []))
        prompt = f"Question: {question_of(state)}\nFindings:\n{findings}"
        answer = await self.model.ainvoke([SystemMessage(SYNTHESIS), HumanMessage(prompt)])
        return {"messages": [AIMessage(content=answer.text)]}


def build_graph(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """research → analysts in parallel → synthesize."""
    lead = planner_model(settings)
    builder = StateGraph(ResearchState)
    builder.add_node("research", Researcher(lead))
    builder.add_node("analyst", build_analyst(executor_model(settings), settings))
    builder.add_node("synthesize", Synthesizer(lead))
    builder.add_edge(START, "research")
    builder.add_conditional_edges("research", spawn_analysts, ["analyst", END])
    builder.add_edge("analyst", "synthesize")
    builder.add_edge("synthesize", END)
    graph: Graph = builder.compile(checkpointer=checkpointer, name="researcher")
    return graph
