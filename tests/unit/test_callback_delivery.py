"""The worker's callback: signed, retried with backoff while the API is away, then accepted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from graphrelay.bridge.callback import WebhookNotifier
from graphrelay.bridge.records import TaskRecord, TaskStatus
from graphrelay.bridge.webhooks import verify
from graphrelay.config import new_webhook_secret

SECRET = new_webhook_secret()


class FlakyApi(BaseHTTPRequestHandler):
    """Answers 503 to the first two posts, then 202; remembers what it got."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        FlakyApi.received.append((dict(self.headers), body))
        self.send_response(503 if len(FlakyApi.received) <= 2 else 202)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky_url() -> Iterator[str]:
    FlakyApi.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/internal/tasks/callback"
    server.shutdown()


def _record() -> TaskRecord:
    return TaskRecord(task_id="gr-1", thread_id="t1", tool="echo", queue="io",
                      status=TaskStatus.COMPLETED, result="done")  # fmt: skip


def test_callback_is_retried_until_accepted(flaky_url: str) -> None:
    WebhookNotifier(SECRET, initial_backoff=0.01, max_backoff=0.05).notify(_record(), flaky_url)

    assert len(FlakyApi.received) == 3
    ids = {headers["webhook-id"] for headers, _ in FlakyApi.received}
    assert ids == {"msg_gr-1"}  # one event, retried: receivers can tell
    for headers, body in FlakyApi.received:
        verify(SECRET, body, headers)


def test_callback_gives_up_after_bounded_attempts(flaky_url: str) -> None:
    notifier = WebhookNotifier(SECRET, max_attempts=2, initial_backoff=0.01, max_backoff=0.05)
    with pytest.raises(httpx.HTTPStatusError, match="503"):
        notifier.notify(_record(), flaky_url)
    assert len(FlakyApi.received) == 2


def test_unreachable_api_is_retried_then_reported() -> None:
    notifier = WebhookNotifier(SECRET, max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
    with pytest.raises(httpx.ConnectError):
        notifier.notify(_record(), "http://127.0.0.1:9/internal/tasks/callback")
