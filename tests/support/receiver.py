"""A real HTTP server on 127.0.0.1 that records the webhooks posted to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Answers each POST with the next status of `statuses` (the last one repeats)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        """Record one request; the status to answer with."""
        self.received.append((headers, body))
        return self.statuses[min(len(self.received), len(self.statuses)) - 1]


@contextmanager
def receiving(statuses: list[int] | None = None) -> Iterator[Receiver]:
    """A running receiver; its `url` takes POSTs on any path."""
    receiver = Receiver(statuses or [202])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            self.send_response(receiver.answer(dict(self.headers), body))
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
