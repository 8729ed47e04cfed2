"""The FastAPI application: the Agent Server's routes, task callbacks and health checks.

HTTP only: the process that serves it (`runtime/api.py`) opens the engine in the lifespan it
passes here and puts it in `app.state.engine`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from graphrelay import __version__
from graphrelay.api import assistants, callbacks, runs, threads

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
Readiness = Callable[[], Awaitable[dict[str, str]]]  # check name → what is wrong


def build_app(lifespan: Lifespan, readiness: Readiness) -> FastAPI:
    """The API's routes; `readiness` names what keeps this replica from taking traffic."""
    app = FastAPI(title="graphrelay", version=__version__, lifespan=lifespan)
    app.include_router(assistants.router)
    app.include_router(threads.router)
    app.include_router(runs.router)
    app.include_router(callbacks.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "not ready"}})
    async def readyz() -> JSONResponse:
        """503 with the reasons unless the broker, the ledger and the results store answer."""
        problems = await readiness()
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app
