"""graphrelay: LangGraph agents whose slow tools run on Celery workers, suspended while they
wait and resumed by a signed webhook.

What a user imports::

    from graphrelay import background_tool, report_progress, Settings, GraphrelayError

The tool names are loaded on first use, so importing `graphrelay.config` (or running the CLI)
does not load LangChain and Celery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from graphrelay.config import Settings, load_settings
from graphrelay.errors import (
    BackgroundToolOutsideGraphError,
    BridgeNotConfiguredError,
    CallbackRejectedError,
    ConfigurationError,
    GraphLoadError,
    GraphrelayDeprecationWarning,
    GraphrelayError,
    InvalidSignatureError,
    PoisonCallError,
)

if TYPE_CHECKING:
    from graphrelay.bridge.progress import report_progress
    from graphrelay.bridge.services import BridgeServices, bridge_services
    from graphrelay.bridge.tool import BackgroundTool, background_tool

__version__ = "0.2.0"

_LAZY = {
    "background_tool": "graphrelay.bridge.tool",
    "BackgroundTool": "graphrelay.bridge.tool",
    "report_progress": "graphrelay.bridge.progress",
    "BridgeServices": "graphrelay.bridge.services",
    "bridge_services": "graphrelay.bridge.services",
}

__all__ = [
    "BackgroundTool",
    "BackgroundToolOutsideGraphError",
    "BridgeNotConfiguredError",
    "BridgeServices",
    "CallbackRejectedError",
    "ConfigurationError",
    "GraphLoadError",
    "GraphrelayDeprecationWarning",
    "GraphrelayError",
    "InvalidSignatureError",
    "PoisonCallError",
    "Settings",
    "__version__",
    "background_tool",
    "bridge_services",
    "load_settings",
    "report_progress",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graphrelay' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
