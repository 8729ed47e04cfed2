"""Standard Webhooks signing: what verifies and what is refused."""

from __future__ import annotations

import time

import pytest

from graphrelay.bridge.messages import signed_headers, verify
from graphrelay.config import new_webhook_secret
from graphrelay.errors import InvalidSignatureError

SECRET = new_webhook_secret()
BODY = '{"task_id": "gr-1"}'


def test_signed_body_verifies() -> None:
    verify(SECRET, BODY.encode(), signed_headers(SECRET, "msg_1", BODY))


def test_signature_covers_id_timestamp_and_body() -> None:
    headers = signed_headers(SECRET, "msg_1", BODY)
    with pytest.raises(InvalidSignatureError):
        verify(SECRET, b'{"task_id": "gr-2"}', headers)
    with pytest.raises(InvalidSignatureError):
        verify(SECRET, BODY.encode(), {**headers, "webhook-id": "msg_2"})
    with pytest.raises(InvalidSignatureError):
        verify(SECRET, BODY.encode(), {**headers, "webhook-timestamp": str(int(time.time()) - 1)})


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamps_outside_five_minutes_are_refused(skew: int) -> None:
    headers = signed_headers(SECRET, "msg_1", BODY, now=time.time() + skew)
    with pytest.raises(InvalidSignatureError, match=r"too (old|new)"):
        verify(SECRET, BODY.encode(), headers)


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-signature": "garbage"},
        {"webhook-signature": "v1,not-base64!!"},
        {"webhook-timestamp": "yesterday"},
        {"webhook-id": ""},
    ],
)
def test_malformed_headers_are_refused(change: dict[str, str]) -> None:
    headers = {**signed_headers(SECRET, "msg_1", BODY), **change}
    with pytest.raises(InvalidSignatureError):
        verify(SECRET, BODY.encode(), headers)


def test_another_secret_is_refused() -> None:
    headers = signed_headers(new_webhook_secret(), "msg_1", BODY)
    with pytest.raises(InvalidSignatureError, match="No matching signature"):
        verify(SECRET, BODY.encode(), headers)
