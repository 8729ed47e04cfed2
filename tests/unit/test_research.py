"""The researcher example: analysts in parallel, each a subgraph with its own state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from graphrelay.config import Settings
from graphrelay.graphs.research import build_graph

SCRIPTS = {
    # First: the synthesis prompt also names the angles.
    "Findings": [{"content": "both sides covered"}],
    "ResearchBrief:default": [
        {"json": {"reasoning": "two sides", "angles": ["alpha side", "beta side"]}}
    ],
    "alpha side": [
        {"tool_calls": [{"name": "lookup", "args": {"topic": "alpha"}}]},
        {"content": "{tool:lookup}"},
    ],
    "beta side": [
        {"tool_calls": [{"name": "lookup", "args": {"topic": "beta"}}]},
        {"content": "{tool:lookup}"},
    ],
}


async def test_analysts_run_in_parallel_each_in_its_own_namespace(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"scripts": SCRIPTS}))
    settings = Settings(
        data_dir=tmp_path, model=f"scripted:{script}", tool_modules=["tests.support.plan_tools"]
    )
    saver = InMemorySaver()
    graph = build_graph(saver, settings)
    config: Any = {"configurable": {"thread_id": "t"}}

    state = await graph.ainvoke({"messages": [{"role": "user", "content": "weigh it"}]}, config)

    assert state["messages"][-1].content == "both sides covered"
    assert sorted((f["angle"], f["finding"]) for f in state["findings"]) == [
        ("alpha side", "facts about alpha"),
        ("beta side", "facts about beta"),
    ]
    history = [snapshot.next async for snapshot in graph.aget_state_history(config)]
    assert ("analyst", "analyst") in history  # both sent in the same superstep
    analysts: dict[str, set[str]] = {}  # namespace → channels its checkpoints hold
    for item in saver.list(None):
        namespace = item.config["configurable"]["checkpoint_ns"]
        if namespace.startswith("analyst:") and "|" not in namespace:
            analysts.setdefault(namespace, set()).update(item.checkpoint["channel_values"])
    assert len(analysts) == 2  # one namespace, with its own checkpoints, per analyst
    for channels in analysts.values():
        assert {"angle", "question", "messages", "findings"} <= channels
