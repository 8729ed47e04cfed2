"""Every checkpointer URL the factory takes gives a saver that runs a real graph."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import START, StateGraph

from graphrelay.backends import open_checkpointer
from tests.support import services


class Counter(TypedDict):
    seen: Annotated[list[int], operator.add]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = services.new_database()
    yield url
    services.drop_database(url)


def _urls(tmp_path: Path, postgres_url: str) -> dict[str, str]:
    return {
        "redis": services.REDIS_URL,
        "sqlite": f"sqlite:///{tmp_path}/checkpoints.sqlite",
        "postgresql": postgres_url,
        "memory": "memory://",
    }


@pytest.mark.parametrize("kind", ["redis", "sqlite", "postgresql", "memory"])
async def test_factory_saver_keeps_thread_state(
    kind: str, tmp_path: Path, postgres_url: str
) -> None:
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    builder = StateGraph(Counter)
    builder.add_node("count", lambda state: {"seen": [len(state["seen"])]})
    builder.add_edge(START, "count")
    config: Any = {"configurable": {"thread_id": "t1"}}
    try:
        async with open_checkpointer(_urls(tmp_path, postgres_url)[kind], prefix=prefix) as saver:
            graph = builder.compile(checkpointer=saver)
            await graph.ainvoke({"seen": []}, config)
            result = await graph.ainvoke({"seen": []}, config)
            assert result["seen"] == [0, 1]
    finally:
        services.clear_prefix(prefix)


async def test_unknown_url_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"redis://\.\.\., sqlite:///PATH"):
        async with open_checkpointer("mongodb://x"):
            pass
