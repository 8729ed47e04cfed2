"""The FastAPI application: run endpoints, task callbacks and health checks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from graphrelay.api import callbacks, threads
from graphrelay.api.runtime import open_runtime
from graphrelay.config import Settings, load_settings
from graphrelay.ports import TaskDispatchPort


def create_app(
    settings: Settings | None = None, dispatcher: TaskDispatchPort | None = None
) -> FastAPI:
    """The API for `settings` (from the environment when None)."""
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings, dispatcher) as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(title="graphrelay", version="0.1.0", lifespan=lifespan)
    app.include_router(threads.router)
    app.include_router(callbacks.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    return app
