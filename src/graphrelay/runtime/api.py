"""The composition root of an API process: the engine opened for the app's lifespan.

`graphrelay serve` runs `create_app` under uvicorn (with `api_workers > 1`, as a factory in
each worker process: `graphrelay.runtime.api:create_app`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI

from graphrelay.api.app import build_app
from graphrelay.bridge.ports import Dispatcher
from graphrelay.config import Settings, load_settings
from graphrelay.runtime.engine import open_engine
from graphrelay.runtime.health import READINESS_CHECKS, failing_checks

GC_THRESHOLDS = (20_000, 20, 100)


def _tune_garbage_collector() -> None:
    """What the process built to start lives until it exits: frozen, no collection walks it
    again. Each run allocates many short-lived objects, and the default first threshold (700)
    collected every few hundred microseconds under load; measured on 300 runs at once, the
    collector's time fell from 0.87 s to 0.13 s."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(settings: Settings | None = None, dispatcher: Dispatcher | None = None) -> FastAPI:
    """The API for `settings` (from the environment when None)."""
    chosen = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_engine(chosen, dispatcher) as engine:
            app.state.engine = engine
            _tune_garbage_collector()
            yield

    async def readiness() -> dict[str, str]:
        return await asyncio.to_thread(failing_checks, chosen, READINESS_CHECKS)

    return build_app(lifespan, readiness)
