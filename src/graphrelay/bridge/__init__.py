"""The suspend-and-resume bridge between LangGraph threads and worker tasks: the protocol,
both sides of the wire, and the ports its adapters implement (no driver code)."""

from graphrelay.bridge.tool import BackgroundTool, background_tool
from graphrelay.errors import BackgroundToolOutsideGraphError

__all__ = ["BackgroundTool", "BackgroundToolOutsideGraphError", "background_tool"]
