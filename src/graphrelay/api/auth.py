"""API keys and tenants: every thread (and so every run) belongs to the tenant that made it.

With no keys configured (`GRAPHRELAY_API_KEYS` empty, the embedded default) the API is open
and everything belongs to the tenant `default`. With keys, a request without a known
`x-api-key` answers 401, and another tenant's ids answer 404, as if they did not exist.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

OPEN_TENANT = "default"


async def authenticate(request: Request) -> None:
    """Set `request.state.tenant` from the API key, or answer 401."""
    keys: dict[str, str] = request.app.state.runtime.settings.api_keys
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
