"""Tools the plan-and-execute tests give their executors."""

from __future__ import annotations

from langchain_core.tools import BaseTool, ToolException, tool

from graphrelay.bridge import background_tool
from graphrelay.config import load_settings

_failed_once: set[str] = set()


@tool
def lookup(topic: str) -> str:
    """Facts about `topic` (answers at once, in the API process)."""
    return f"facts about {topic}"


@tool
def broken_once(name: str) -> str:
    """Fails the first time it is called for `name` in this process, then works."""
    if name not in _failed_once:
        _failed_once.add(name)
        raise ToolException(f"{name} is not ready yet")
    return f"{name} is ready"


broken_once.handle_tool_error = True


@background_tool(queue="io", idempotent=True, timeout=60)
def flaky_once(name: str) -> str:
    """Fails the first time it runs for `name` (a marker file in the data folder), then works."""
    marker = load_settings().data_dir / f"flaky-{name}"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        raise RuntimeError(f"{name} is not ready yet")
    return f"{name} is ready"


TOOLS: list[BaseTool] = [lookup, broken_once, flaky_once.tool]
