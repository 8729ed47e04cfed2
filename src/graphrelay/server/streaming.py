"""A run's stream: its events, their SSE names and ids, and the stream modes a client asks for.

A channel is a run id, or `thread:{id}` for everything that happens on a thread. Each
subscriber gets every event published on its channel after it subscribed, nothing before;
`RunEvents` (a port, `ports.py`) carries them: within one process (`backends/memory.py`) or
across replicas over Redis (`backends/redis/events.py`).

A run started with `stream_resumable` keeps its events: each gets an id (the SSE `id`), and a
client that lost its stream subscribes again with the last id it saw (`Last-Event-ID`) and
first gets every kept event after it (`put_first`). Ids are `MS-SEQ`, as Redis streams write
them. Kept events expire `KEEP_SECONDS` after the run's last one, and a run keeps at most
about `KEEP_MAX`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from fastapi.encoders import jsonable_encoder
from langgraph.types import StreamMode
from pydantic import BaseModel

if TYPE_CHECKING:  # records and ports import this module for its event types
    from graphrelay.server.ports import RunEvents
    from graphrelay.server.records import RunRecord

END = "end"
KEEP_SECONDS = 3600  # how long a resumable run's events are kept after its last one
KEEP_MAX = 10_000  # events kept per run (Redis trims to about this many, oldest first)
FROM_START = "-1"  # the Last-Event-ID that replays a run's kept events from the first
# Redis stream ids are two unsigned 64-bit numbers: 19 digits always fit, 20 may not.
_EVENT_ID = re.compile(r"-1|\d{1,19}(-\d{1,19})?")
STREAM_MODES = ("values", "updates", "messages-tuple", "custom", "debug")


class Event(NamedTuple):
    """One event of a stream."""

    name: str  # the SSE event name
    data: Any  # JSON-able
    id: str | None = None  # set on kept events: the SSE id a client resumes after


def valid_event_id(text: str) -> bool:
    """Whether `text` can be an id this server gave an event, or `FROM_START`."""
    return _EVENT_ID.fullmatch(text) is not None


def event_order(event_id: str) -> tuple[int, ...]:
    """Sortable form of an event id (`MS-SEQ`, as Redis streams write them)."""
    return (-1,) if event_id == FROM_START else tuple(map(int, event_id.split("-")))


def to_json(data: Any) -> bytes:
    """An event's data as JSON, as FastAPI's `jsonable_encoder` would render it.

    orjson writes dicts, lists, dataclasses and datetimes itself and asks `_plain` for the
    rest: on a run's state of four messages, 13 µs against `jsonable_encoder`'s 150 µs.
    """
    return orjson.dumps(data, default=_plain, option=orjson.OPT_NON_STR_KEYS)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):  # messages: what jsonable_encoder does with a model
        return value.model_dump(mode="json", by_alias=True)
    try:
        return jsonable_encoder(value)  # sets, paths, and whatever else FastAPI knows
    except (TypeError, ValueError):
        return str(value)


def thread_channel(thread_id: str) -> str:
    """The channel of everything that happens on a thread (its runs and its tasks' progress)."""
    return f"thread:{thread_id}"


def end_event(run_id: str, status: str) -> Event:
    """The last event of a run's stream."""
    return Event(END, {"run_id": run_id, "status": status})


def put_first(queue: asyncio.Queue[Event], kept: Iterable[Event], after: str) -> None:
    """Put the kept events after `after` into `queue` ahead of the live ones it holds already,
    dropping live copies of events that `kept` holds (or that came before `after`)."""
    live = [queue.get_nowait() for _ in range(queue.qsize())]
    seen = event_order(after)
    for event in kept:
        if event.id is not None and event_order(event.id) > seen:
            queue.put_nowait(event)
            seen = event_order(event.id)
    for event in live:
        if event.id is None or event_order(event.id) > seen:
            queue.put_nowait(event)


def stream_modes(requested: Any) -> list[str]:
    """The SDK's `stream_mode` (a name or a list) as a list; `values` when absent."""
    if requested is None:
        return ["values"]
    return [requested] if isinstance(requested, str) else list(requested)


def graph_mode(sdk_mode: str) -> StreamMode:
    """LangGraph's name for an SDK stream mode."""
    if sdk_mode == "messages-tuple":
        return "messages"
    if sdk_mode not in STREAM_MODES:
        raise ValueError(f"unknown stream mode {sdk_mode!r}; use one of {STREAM_MODES}")
    return sdk_mode  # type: ignore[return-value]


def event_name(mode: str, namespace: tuple[str, ...]) -> str:
    """The SSE event name: the mode, then `|`-joined subgraph namespace if any."""
    return "|".join([mode, *namespace])


async def stream_graph(
    graph: Any, graph_input: Any, config: Any, run: RunRecord, events: RunEvents
) -> None:
    """Run the graph, publishing each chunk in the modes the run asked for on the run's
    channel and its thread's (each chunk encoded once for every channel and subscriber)."""
    options = run.options
    modes = stream_modes(options.stream_mode)
    subgraphs = options.stream_subgraphs
    keep, on_thread = run.resumable, thread_channel(run.thread_id)
    part: Any
    async for part in graph.astream(
        graph_input, config, stream_mode=[graph_mode(m) for m in modes], subgraphs=subgraphs
    ):
        namespace: tuple[str, ...] = part[0] if subgraphs else ()
        mode, chunk = part[-2], part[-1]
        if keep or events.wanted(run.run_id) or events.wanted(on_thread):
            name, data = event_name(mode, namespace), orjson.Fragment(to_json(chunk))
            events.publish(run.run_id, name, data, keep=keep)
            events.publish(on_thread, name, data)
