"""Standard Webhooks signing and verification for task callbacks and run webhooks.

The `standardwebhooks` library does the HMAC-SHA256 over `id.timestamp.body`, the
constant-time compare and the 5-minute timestamp window; this module only maps its errors
(and the malformed-header errors it lets through) to one exception.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


class InvalidSignatureError(Exception):
    """The webhook's signature, timestamp or headers do not verify."""


def signed_headers(
    secret: str, message_id: str, body: str, now: float | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, signed with `secret`."""
    timestamp = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(secret: str, body: bytes, headers: dict[str, str]) -> None:
    """Raise InvalidSignatureError unless `headers` sign `body` within the time window."""
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError as exc:
        raise InvalidSignatureError(str(exc)) from exc
    except ValueError as exc:  # malformed signature list, bad base64 or a non-UTF-8 body
        raise InvalidSignatureError(f"malformed webhook headers: {exc}") from exc
