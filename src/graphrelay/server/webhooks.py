"""Completion webhooks: when a run given `webhook=URL` stops, POST it there, signed.

Signed like the task callbacks (Standard Webhooks, the same secret), so receivers verify both
the same way; retried with the same bounded backoff.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from tenacity import AsyncRetrying

from graphrelay.bridge.messages import signed_headers
from graphrelay.bridge.notifier import retry_policy
from graphrelay.config import Settings

log = logging.getLogger(__name__)


async def deliver(settings: Settings, url: str, run_id: str, payload: dict[str, Any]) -> None:
    """POST `payload` to `url` until it is accepted or the attempts run out (then log it)."""
    body = json.dumps(payload, default=str)
    policy = retry_policy(
        settings.callback_max_attempts,
        settings.callback_backoff_initial,
        settings.callback_backoff_max,
    )
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            async for attempt in AsyncRetrying(**policy):
                with attempt:
                    headers = signed_headers(settings.signing_secret, f"run_{run_id}", body)
                    response = await client.post(url, content=body, headers=headers)
                    response.raise_for_status()
    except httpx.HTTPError as exc:
        log.error("completion webhook for run %s to %s failed: %s", run_id, url, exc)
