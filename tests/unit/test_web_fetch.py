"""fetch_text against a real local HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from graphrelay.tools.web import MAX_TEXT_CHARS, fetch_text, html_to_text

PAGE = """<!DOCTYPE html>
<html><head>
  <title>  Relay   notes </title>
  <style>body { color: red; }</style>
  <script>var secret = "do not show";</script>
</head><body>
  <h1>Suspend &amp; resume</h1>
  <p>Slow tools run
     on Celery workers.</p>
  <noscript>enable javascript</noscript>
  <ul><li>first</li><li>second</li></ul>
</body></html>
"""

BIG_BODY = b"a" * 3_000_000
LONG_TEXT = ("word " * 10_000).encode()


ROUTES: dict[str, tuple[int, str, bytes]] = {
    "/page": (200, "text/html; charset=utf-8", PAGE.encode()),
    "/missing": (404, "text/plain", b"not here"),
    "/big": (200, "text/plain", BIG_BODY),
    "/long": (200, "text/plain; charset=utf-8", LONG_TEXT),
    "/image": (200, "image/png", b"\x89PNG\r\n\x1a\n"),
    "/latin1": (200, "text/plain; charset=iso-8859-1", "café".encode("latin-1")),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/page")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, content_type, body = ROUTES.get(self.path, (404, "text/plain", b""))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_html_page_becomes_readable_text(base_url: str) -> None:
    page = fetch_text(f"{base_url}/page")
    assert page.status == 200
    assert page.content_type.startswith("text/html")
    assert page.title == "Relay notes"
    assert page.text == "Suspend & resume\nSlow tools run on Celery workers.\nfirst\nsecond"
    assert not page.truncated


def test_redirect_is_followed(base_url: str) -> None:
    page = fetch_text(f"{base_url}/redirect")
    assert page.url == f"{base_url}/page"
    assert page.title == "Relay notes"


def test_non_2xx_is_an_error(base_url: str) -> None:
    with pytest.raises(RuntimeError, match=rf"GET {base_url}/missing answered 404"):
        fetch_text(f"{base_url}/missing")


def test_body_is_capped_at_max_bytes(base_url: str) -> None:
    page = fetch_text(f"{base_url}/big", max_bytes=1_000)
    assert page.truncated
    assert page.text == "a" * 1_000


def test_text_is_capped_at_max_chars(base_url: str) -> None:
    page = fetch_text(f"{base_url}/long")
    assert page.truncated
    assert len(page.text) == MAX_TEXT_CHARS
    assert page.title == ""


def test_declared_charset_is_used(base_url: str) -> None:
    assert fetch_text(f"{base_url}/latin1").text == "café"


def test_binary_content_is_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match="image/png, not text"):
        fetch_text(f"{base_url}/image")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "127.0.0.1/page", ""])
def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(ValueError, match="only absolute http"):
        fetch_text(url)


def test_connection_failure_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RuntimeError, match=rf"GET http://127.0.0.1:{port}/ failed: ConnectError"):
        fetch_text(f"http://127.0.0.1:{port}/", timeout=5)


def test_html_to_text_handles_self_closing_and_unclosed_tags() -> None:
    title, text = html_to_text("<p>one<br/>two<script/>three<p>four")
    assert title == ""
    assert text == "one\ntwothree\nfour"
