"""The suspend-and-resume bridge between LangGraph threads and Celery tasks."""

from graphrelay.bridge.tool import BackgroundTool, BackgroundToolOutsideGraphError, background_tool

__all__ = ["BackgroundTool", "BackgroundToolOutsideGraphError", "background_tool"]
