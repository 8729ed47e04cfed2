"""What a worker sends the API, and how it is signed: the callback of a finished call and
progress reports, signed per Standard Webhooks (also used for runs' completion webhooks).

The `standardwebhooks` library does the HMAC-SHA256 over `id.timestamp.body`, the
constant-time compare and the 5-minute timestamp window; this module only maps its errors
(and the malformed-header errors it lets through) to one exception.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from graphrelay.bridge.calls import CallRecord
from graphrelay.errors import InvalidSignatureError

CALLBACK_PATH = "/internal/tasks/callback"
PROGRESS_PATH = "/internal/tasks/progress"


class CallbackMessage(BaseModel):
    """The body a worker POSTs to `/internal/tasks/callback` when a task finishes."""

    model_config = {"extra": "forbid"}

    task_id: str = Field(min_length=1, max_length=200)
    thread_id: str = Field(min_length=1, max_length=200)
    status: Literal["completed", "failed"]
    result: Any = None
    error: str | None = None

    @classmethod
    def from_record(cls, record: CallRecord) -> CallbackMessage:
        """The callback body for a finished record."""
        return cls(
            task_id=record.task_id,
            thread_id=record.thread_id,
            status="failed" if record.error is not None else "completed",
            result=record.result,
            error=record.error,
        )


class ProgressMessage(BaseModel):
    """The body of a progress report from a running background call."""

    model_config = {"extra": "forbid"}

    task_id: str = Field(min_length=1, max_length=200)
    thread_id: str = Field(min_length=1, max_length=200)
    fraction: float = Field(ge=0.0, le=1.0)
    message: str = Field(default="", max_length=2000)


def progress_url(callback_url: str) -> str:
    """The progress endpoint of the API that `callback_url` belongs to."""
    return callback_url.split("/internal/", 1)[0] + PROGRESS_PATH


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
