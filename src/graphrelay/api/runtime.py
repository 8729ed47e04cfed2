"""What one API process holds while it serves: adapters, graphs and the run executor."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from graphrelay.api import run_webhooks
from graphrelay.api.events import open_events
from graphrelay.api.executor import RunExecutor
from graphrelay.api.leases import open_leases
from graphrelay.api.store import RunStore, open_run_store
from graphrelay.bridge import services
from graphrelay.bridge.dispatch import CeleryDispatcher
from graphrelay.bridge.ledger import open_ledger
from graphrelay.bridge.locks import thread_locks_for
from graphrelay.config import Settings
from graphrelay.execution.celery_app import create_celery_app, declare_topology
from graphrelay.orchestrator.registry import Graph, build_graphs
from graphrelay.ports import Ledger, TaskDispatchPort
from graphrelay.state.factory import open_checkpointer


@dataclass
class ApiRuntime:
    """The adapters and graphs of one API process."""

    settings: Settings
    ledger: Ledger
    store: RunStore
    graphs: dict[str, Graph]
    executor: RunExecutor
    checkpointer: BaseCheckpointSaver[Any]


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, dispatcher: TaskDispatchPort | None = None
) -> AsyncIterator[ApiRuntime]:
    """Open every adapter the settings name, install the bridge, and close it all after."""
    ledger = open_ledger(settings.ledger_url, settings.key_prefix)
    if dispatcher is None:
        celery_app = create_celery_app(settings)
        await asyncio.to_thread(declare_topology, celery_app)
        dispatcher = CeleryDispatcher(celery_app)
    services.install(
        services.BridgeServices(
            ledger=ledger,
            dispatcher=dispatcher,
            callback_url=settings.callback_url,
            default_timeout=settings.default_task_timeout,
        )
    )
    store = open_run_store(settings.ledger_url, settings.key_prefix, settings.data_dir)
    try:
        async with open_checkpointer(
            settings.checkpointer_url,
            prefix=settings.key_prefix,
            ttl_seconds=settings.checkpoint_ttl_seconds,
        ) as checkpointer:
            graphs = build_graphs(settings, checkpointer)
            locks = thread_locks_for(
                settings.ledger_url, settings.key_prefix, settings.run_lease_seconds
            )
            leases = open_leases(settings.ledger_url, settings.key_prefix, settings.data_dir)
            events = open_events(settings.ledger_url, settings.key_prefix)
            await events.start()
            executor = RunExecutor(
                graphs, ledger, locks, store, leases, events, settings.run_lease_seconds
            )
            executor.webhook_sender = functools.partial(run_webhooks.deliver, settings)
            upkeep = asyncio.create_task(executor.keep_leases(settings.run_lease_seconds / 3))
            try:
                yield ApiRuntime(settings, ledger, store, graphs, executor, checkpointer)
            finally:
                upkeep.cancel()
                await executor.drain()
                await events.close()
    finally:
        services.install(None)
        ledger.close()
