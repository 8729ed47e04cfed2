"""The composition root of the run engine: settings → backends, bridge, graphs, executor.

The API process (`runtime/api.py`) and the sweeper (`runtime/sweeper.py`, also as a beat job)
open the same engine; the sweeper serves no HTTP, but repairing a thread means resuming its
graph.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator

from graphrelay.backends import open_backends, open_dispatcher
from graphrelay.bridge.ports import Dispatcher
from graphrelay.bridge.services import BridgeServices
from graphrelay.config import Settings
from graphrelay.runtime.graphs import build_graphs
from graphrelay.server import webhooks
from graphrelay.server.engine import Engine
from graphrelay.server.executor import RunExecutor
from graphrelay.server.store import RunStore


@contextlib.asynccontextmanager
async def open_engine(
    settings: Settings, dispatcher: Dispatcher | None = None
) -> AsyncIterator[Engine]:
    """Open every adapter the settings name and the graphs; close it all after."""
    if dispatcher is None:
        dispatcher = await open_dispatcher(settings)
    async with open_backends(settings) as backends:
        bridge = BridgeServices(
            ledger=backends.ledger,
            dispatcher=dispatcher,
            callback_url=settings.callback_url,
            default_timeout=settings.default_task_timeout,
        )
        graphs = build_graphs(settings, backends.checkpointer)
        store = RunStore(backends.documents)
        executor = RunExecutor(graphs, backends.ledger, backends.locks, store, backends.leases,
                               backends.events, settings.run_lease_seconds, bridge)  # fmt: skip
        executor.webhook_sender = functools.partial(webhooks.deliver, settings)
        # Renewals also touch the records of the runs they hold: more often than the TTL.
        every = min(settings.run_lease_seconds, settings.thread_ttl_seconds or float("inf")) / 3
        upkeep = asyncio.create_task(executor.keep_leases(every))
        try:
            yield Engine(settings, backends.ledger, dispatcher, store, graphs, executor,
                         backends.checkpointer)  # fmt: skip
        finally:
            upkeep.cancel()
            await executor.drain()
