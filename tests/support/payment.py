"""Tool-less graphs that pay after two "yes", for the tests of a thread claimed twice at once.

`payment`: one node asks "send the payment?" then "are you sure?" (two `interrupt()` calls)
and pays after two "yes". `checkout`: the same two questions around a background call: the
call (`echo_later`, through LangGraph's ToolNode) and the first question wait at once, in two
branches; the second question comes once both are answered. Paying appends a line to
`payments.jsonl` in the data folder, which every process of a stack shares: the side effect a
test counts. Between the two questions a node prepares the payment for `PREPARE_SECONDS`, so
the run that took the first answer is still under way when a copy of that answer sent at the
same moment arrives, however the two requests happen to be scheduled (once that run has
ended, the thread waits on "are you sure?", and a "yes" is a fair answer to it).
"""

from __future__ import annotations

import asyncio
import json
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.types import interrupt

from graphrelay.config import Settings
from graphrelay.server.ports import Graph
from tests.support.tools import echo_later

FIRST_QUESTION = "send the payment?"
SECOND_QUESTION = "are you sure?"
LEDGER = "payments.jsonl"
QUOTE_CALL_ID = "call_quote"
PREPARE_SECONDS = 0.5


class Payment(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    answers: Annotated[list[str], operator.add]
    paid: bool


def payments(data_dir: Path, thread_id: str) -> list[dict[str, Any]]:
    """The payments recorded for `thread_id`."""
    ledger = data_dir / LEDGER
    if not ledger.exists():
        return []
    entries = [json.loads(line) for line in ledger.read_text().splitlines() if line]
    return [entry for entry in entries if entry["thread_id"] == thread_id]


def _pay(data_dir: Path, config: RunnableConfig) -> dict[str, Any]:
    thread_id = config["configurable"]["thread_id"]
    with (data_dir / LEDGER).open("a") as ledger:
        ledger.write(json.dumps({"thread_id": thread_id}) + "\n")
    return {"paid": True}


def build_payment(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """One node: two questions, then the payment."""
    data_dir = settings.data_dir

    async def pay(state: Payment, config: RunnableConfig) -> dict[str, Any]:
        if interrupt(FIRST_QUESTION) != "yes":
            return {"paid": False}
        await asyncio.sleep(PREPARE_SECONDS)
        if interrupt(SECOND_QUESTION) != "yes":
            return {"paid": False}
        return _pay(data_dir, config)

    builder = StateGraph(Payment)
    builder.add_node("pay", pay)
    builder.add_edge(START, "pay")
    graph: Graph = builder.compile(checkpointer=checkpointer)
    return graph


def build_checkout(checkpointer: BaseCheckpointSaver[Any], settings: Settings) -> Graph:
    """A background quote and the first question at once, then the second question and the
    payment."""
    data_dir = settings.data_dir

    def order(state: Payment) -> dict[str, Any]:
        call = {"name": "echo_later", "args": {"text": "quote"}, "id": QUOTE_CALL_ID}
        return {"messages": [AIMessage(content="", tool_calls=[call])]}

    async def ask(state: Payment) -> dict[str, Any]:
        answer = interrupt(FIRST_QUESTION)
        await asyncio.sleep(PREPARE_SECONDS)
        return {"answers": [answer]}

    def pay(state: Payment, config: RunnableConfig) -> dict[str, Any]:
        if state.get("answers") != ["yes"] or interrupt(SECOND_QUESTION) != "yes":
            return {"paid": False}
        return _pay(data_dir, config)

    builder = StateGraph(Payment)
    builder.add_node("order", order)
    builder.add_node("quote", ToolNode([echo_later.tool]))
    builder.add_node("ask", ask)
    builder.add_node("pay", pay)
    builder.add_edge(START, "order")
    builder.add_edge("order", "quote")
    builder.add_edge("order", "ask")
    builder.add_edge(["quote", "ask"], "pay")
    graph: Graph = builder.compile(checkpointer=checkpointer)
    return graph
