"""The tools every served graph gets: the `TOOLS` of the configured tool modules."""

from __future__ import annotations

import importlib

from langchain_core.tools import BaseTool

from graphrelay.config import Settings
from graphrelay.errors import ConfigurationError


def configured_tools(settings: Settings) -> list[BaseTool]:
    """The `TOOLS` of every module in `settings.tool_modules`, in order."""
    tools: list[BaseTool] = []
    for module_name in settings.tool_modules:
        module = importlib.import_module(module_name)
        module_tools = getattr(module, "TOOLS", None)
        if module_tools is None:
            raise ConfigurationError(f"tool module {module_name} has no TOOLS list")
        tools.extend(module_tools)
    return tools
