"""The worker's callback: signed, retried with backoff while the API is away, then accepted."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from graphrelay.bridge.calls import CallRecord, CallStatus
from graphrelay.bridge.messages import verify
from graphrelay.bridge.notifier import WebhookNotifier
from graphrelay.config import new_webhook_secret
from tests.support.receiver import Receiver, receiving

SECRET = new_webhook_secret()


@pytest.fixture
def flaky_api() -> Iterator[Receiver]:
    """Answers 503 twice, then 202."""
    with receiving([503, 503, 202]) as receiver:
        yield receiver


def _record() -> CallRecord:
    return CallRecord(task_id="gr-1", thread_id="t1", tool="echo", queue="io",
                      status=CallStatus.COMPLETED, result="done")  # fmt: skip


def test_callback_is_retried_until_accepted(flaky_api: Receiver) -> None:
    WebhookNotifier(SECRET, initial_backoff=0.01, max_backoff=0.05).notify(_record(), flaky_api.url)

    assert len(flaky_api.received) == 3
    ids = {headers["webhook-id"] for headers, _ in flaky_api.received}
    assert ids == {"msg_gr-1"}  # one event, retried: receivers can tell
    for headers, body in flaky_api.received:
        verify(SECRET, body, headers)


def test_callback_gives_up_after_bounded_attempts(flaky_api: Receiver) -> None:
    notifier = WebhookNotifier(SECRET, max_attempts=2, initial_backoff=0.01, max_backoff=0.05)
    with pytest.raises(httpx.HTTPStatusError, match="503"):
        notifier.notify(_record(), flaky_api.url)
    assert len(flaky_api.received) == 2


def test_unreachable_api_is_retried_then_reported() -> None:
    notifier = WebhookNotifier(SECRET, max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
    with pytest.raises(httpx.ConnectError):
        notifier.notify(_record(), "http://127.0.0.1:9/internal/tasks/callback")
