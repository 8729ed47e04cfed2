"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests: chat completions only.

The test gives it a `respond(request) -> Reply` function; it answers in the Chat Completions
wire format (JSON, or server-sent events when the client asks to stream), so the real
`langchain-openai` client and the `openai` SDK parse it as they would OpenAI's answer.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """An assistant message: text, or tool calls as (name, arguments) pairs."""

    content: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        """The `message` of a chat completion choice."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                 "function": {"name": name, "arguments": json.dumps(args)}}
                for name, args in self.tool_calls
            ]  # fmt: skip
        return message

    @property
    def finish_reason(self) -> str:
        """`tool_calls` or `stop`."""
        return "tool_calls" if self.tool_calls else "stop"


Responder = Callable[[dict[str, Any]], Reply]


class FakeOpenAI:
    """Answers each chat completion with `respond(request body)`; records every request."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.requests: list[dict[str, Any]] = []
        self.base_url = ""
        self._lock = threading.Lock()

    def answer(self, body: dict[str, Any]) -> Reply:
        """Record the request; the reply."""
        with self._lock:
            self.requests.append(body)
        return self.respond(body)

    def structured_requests(self, schema_name: str) -> list[dict[str, Any]]:
        """Requests that asked for JSON-schema output named `schema_name`."""
        return [
            body for body in list(self.requests)
            if (body.get("response_format") or {}).get("json_schema", {}).get("name") == schema_name
        ]  # fmt: skip


def completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """A `chat.completion` object."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": 0,
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": reply.message(), "finish_reason": reply.finish_reason,
                     "logprobs": None}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }  # fmt: skip


def chunks(body: dict[str, Any], reply: Reply) -> Iterator[dict[str, Any]]:
    """The same reply as `chat.completion.chunk` objects: the message, then the finish."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk",
            "created": 0, "model": body.get("model", "fake")}  # fmt: skip
    delta = reply.message()
    if "tool_calls" in delta:
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(delta["tool_calls"])]
    yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]}


@contextmanager
def serving(respond: Responder) -> Iterator[FakeOpenAI]:
    """A running server; its `base_url` ends in `/v1`."""
    fake = FakeOpenAI(respond)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if not self.path.endswith("/chat/completions"):
                self._send(404, "application/json", b'{"error": {"message": "not found"}}')
                return
            try:
                reply = fake.answer(body)
            except Exception as exc:  # the client should see the test's mistake
                error = {"error": {"message": f"{type(exc).__name__}: {exc}"}}
                self._send(500, "application/json", json.dumps(error).encode())
                return
            if body.get("stream"):
                events = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks(body, reply))
                self._send(200, "text/event-stream", (events + "data: [DONE]\n\n").encode())
            else:
                self._send(200, "application/json", json.dumps(completion(body, reply)).encode())

        def _send(self, status: int, content_type: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake.base_url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
