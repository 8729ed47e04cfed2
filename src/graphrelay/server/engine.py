"""The run engine of one process, as the API and the sweeper use it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.ports import Dispatcher
from graphrelay.config import Settings
from graphrelay.server.executor import RunExecutor
from graphrelay.server.ports import Graph
from graphrelay.server.store import RunStore


@dataclass
class Engine:
    """The adapters, graphs and run executor of one API (or sweeper) process."""

    settings: Settings
    ledger: Ledger
    dispatcher: Dispatcher
    store: RunStore
    graphs: dict[str, Graph]
    executor: RunExecutor
    checkpointer: BaseCheckpointSaver[Any]
