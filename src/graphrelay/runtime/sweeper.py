"""The sweeper as a process (`graphrelay sweeper`) and as a Celery beat job.

It opens the same engine an API process does (ledger, broker, checkpointer, graphs, run
leases), without serving HTTP, because repairing a thread means resuming its graph.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from prometheus_client import start_http_server

from graphrelay.bridge.sweeper import Sweeper, SweepPolicy
from graphrelay.config import Settings
from graphrelay.runtime.engine import open_engine
from graphrelay.server.engine import Engine

log = logging.getLogger(__name__)


def sweeper_for(engine: Engine) -> Sweeper:
    """A sweeper over an open engine's adapters."""
    settings = engine.settings
    return Sweeper(
        ledger=engine.ledger,
        dispatcher=engine.dispatcher,
        callback_url=settings.callback_url,
        resume_thread=engine.executor.resume_thread,
        take_over_runs=engine.executor.take_over_expired,
        policy=SweepPolicy(
            settings.sweeper_grace_seconds, settings.sweeper_batch, settings.sweeper_max_repairs
        ),
        thread_exists=engine.store.thread_exists,
        # the run store's list of every thread (the ledger's indexes are the sweeper's own;
        # the Redis saver shares none between threads)
        forget_expired=engine.store.forget_expired,
    )


async def sweep(
    settings: Settings, once: bool = False, on_round: Callable[[Counter[str]], None] | None = None
) -> None:
    """Sweep every `sweeper_period_seconds` (or one round when `once`)."""
    async with open_engine(settings) as engine:
        sweeper = sweeper_for(engine)
        while True:
            try:
                done = await sweeper.sweep_once()
                if on_round is not None:
                    on_round(done)
            except Exception:  # a store may be briefly away: the next round tries again
                if once:
                    raise
                log.exception("sweep failed")
            if once:
                await engine.executor.drain()
                return
            await asyncio.sleep(settings.sweeper_period_seconds)


def serve_metrics(port: int) -> None:
    """Expose the sweeper's counters for Prometheus on `port`."""
    start_http_server(port, addr="127.0.0.1")
