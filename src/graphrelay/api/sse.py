"""Server-sent events: a channel's events as SSE frames, and a client that leaves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Header, Request
from fastapi.responses import StreamingResponse

from graphrelay.api.deps import engine_of
from graphrelay.server.engine import Engine
from graphrelay.server.streaming import END, Event, to_json

log = logging.getLogger(__name__)

# How the OpenAPI document describes every streaming endpoint's 200.
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}}}}

LAST_EVENT_ID = Header(None, alias="Last-Event-ID", description="resume after this event id")


def sse_response(
    request: Request,
    channel: str,
    queue: asyncio.Queue[Event],
    *,
    hello: dict[str, Any] | None = None,
    cancel_run: str | None = None,
    location: str | None = None,
) -> StreamingResponse:
    """The channel's events as SSE frames; if the client leaves before the end, cancel
    `cancel_run` (when given). `location` is where the client may join again."""
    engine = engine_of(request)

    async def frames() -> AsyncIterator[bytes]:
        ended = False
        # A client that leaves while no event is due is noticed only by listening for it:
        # the server learns of a closed connection from a write, and a run may be silent
        # for as long as a tool takes.
        gone = asyncio.ensure_future(disconnected(request)) if cancel_run else None
        try:
            yield _frame(Event("metadata", hello or {"run_id": channel, "attempt": 1}))
            while not ended and (event := await _next_event(queue, gone)) is not None:
                yield _frame(event)
                ended = event.name in (END, "error")
        finally:
            if gone is not None:
                gone.cancel()
            engine.executor.events.unsubscribe(channel, queue)
            if cancel_run is not None and not ended:
                # Cancelled with the response: the cancel must be a task of its own.
                engine.executor.spawn(cancel_left_run(engine, cancel_run))

    headers = {"Location": location} if location else None
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)


async def _next_event(
    queue: asyncio.Queue[Event], gone: asyncio.Future[None] | None
) -> Event | None:
    """The next event, or None once the client has gone (when `gone` watches for that)."""
    if gone is None:
        return await queue.get()
    getter = asyncio.ensure_future(queue.get())
    waited: set[asyncio.Future[Any]] = {getter, gone}
    await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    return None


async def cancel_left_run(engine: Engine, run_id: str) -> None:
    if await engine.executor.stop(run_id):
        log.info("run %s cancelled: its client disconnected", run_id)


def _frame(event: Event) -> bytes:
    frame = b"event: %s\ndata: %s\n\n" % (event.name.encode(), to_json(event.data))
    return frame if event.id is None else b"id: %s\n%s" % (event.id.encode(), frame)


async def disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
