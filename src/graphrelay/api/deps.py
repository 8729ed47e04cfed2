"""What every route depends on: the engine, the caller's tenant, and the records it may see.

API keys and tenants: every thread (and so every run) belongs to the tenant that made it.
With no keys configured (`GRAPHRELAY_API_KEYS` empty, the embedded default) the API is open
and everything belongs to the tenant `default`. With keys, a request without a known
`x-api-key` answers 401, and another tenant's ids answer 404, as if they did not exist.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

from graphrelay.api.errors import not_found
from graphrelay.server.engine import Engine
from graphrelay.server.records import RunRecord, ThreadRecord

OPEN_TENANT = "default"


def engine_of(request: Request) -> Engine:
    """The engine the request's app serves."""
    engine: Engine = request.app.state.engine
    return engine


async def authenticate(request: Request) -> None:
    """Set `request.state.tenant` from the API key, or answer 401."""
    keys: dict[str, str] = engine_of(request).settings.api_keys
    if not keys:
        request.state.tenant = OPEN_TENANT
        return
    given = request.headers.get("x-api-key", "")
    for key, tenant in keys.items():
        if hmac.compare_digest(given.encode(), key.encode()):
            request.state.tenant = tenant
            return
    raise HTTPException(401, "missing or unknown API key; send it in the x-api-key header")


def tenant_of(request: Request) -> str:
    """The tenant `authenticate` found for this request."""
    tenant: str = request.state.tenant
    return tenant


async def thread_or_404(request: Request, thread_id: str) -> ThreadRecord:
    """The caller's thread, or a 404 (another tenant's thread does not exist for it)."""
    thread = await engine_of(request).store.get_thread(thread_id)
    if thread is None or thread.tenant != tenant_of(request):
        raise not_found("thread", thread_id)
    return thread


async def run_or_404(request: Request, thread_id: str, run_id: str) -> RunRecord:
    """The caller's run on that thread, or a 404."""
    await thread_or_404(request, thread_id)
    run = await engine_of(request).store.get_run(run_id)
    if run is None or run.thread_id != thread_id:
        raise not_found("run", run_id)
    return run
