"""What a background tool needs inside a graph run, handed to it by the run that executes it.

Tool bodies run inside LangGraph, which calls them with fixed signatures, so the run engine
sets the services in a context variable around every graph call (`bridge_services`); asyncio
tasks and LangGraph's worker threads copy the context, so the tool finds them there. Nothing is
process-wide: two engines in one process (tests, benchmarks) each give their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.ports import Dispatcher
from graphrelay.errors import BridgeNotConfiguredError


@dataclass
class BridgeServices:
    """The adapters a background tool needs in the orchestrator process."""

    ledger: Ledger
    dispatcher: Dispatcher
    callback_url: str
    default_timeout: float = 3600.0  # seconds a call may take when its tool sets no timeout


_current: ContextVar[BridgeServices | None] = ContextVar("graphrelay_bridge", default=None)


@contextlib.contextmanager
def bridge_services(services: BridgeServices) -> Iterator[BridgeServices]:
    """Give `services` to the background tools that graph calls inside the block make."""
    token = _current.set(services)
    try:
        yield services
    finally:
        _current.reset(token)


def current() -> BridgeServices:
    """The services of the graph run in progress, or a clear error saying how to give them."""
    services = _current.get()
    if services is None:
        raise BridgeNotConfiguredError(
            "no graphrelay bridge is given to this graph run: run graphs through "
            "`graphrelay serve`, or call them inside `with bridge_services(BridgeServices(...))`"
        )
    return services
