"""Live events of runs and threads, fanned out to the clients streaming them.

A channel is a run id, or `thread:{id}` for everything that happens on a thread. Each
subscriber gets every event published on its channel after it subscribed, nothing before.

`LocalEvents` delivers within one process (the embedded profile has one API process).
`RedisEvents` also carries every event over Redis pub/sub, so a client may stream a run
from any replica: events reach the local subscribers at once, and are PUBLISHed in order
(pipelined by one sender task, through `AsyncWire`) for the other replicas, which subscribe
on Redis only to the channels their clients stream. A replica drops its own events when
they come back.

A run started with `stream_resumable` keeps its events: each gets an id (the SSE `id`), and
a client that lost its stream subscribes again with the last id it saw (`Last-Event-ID`) and
first gets every kept event after it. `LocalEvents` keeps them in memory; `RedisEvents` in a
Redis stream per run, appended and published in one Lua call, so the id a replica's clients
see is the one every replica sees, and a subscriber that replays from the stream and listens
on pub/sub can tell the two copies of an event apart. Kept events expire `KEEP_SECONDS` after
the run's last one, and a run keeps at most about `KEEP_MAX`.

Stop requests travel the same way: a replica asked to stop a run it does not execute
publishes the request on the control channel, which every replica subscribes to, and the
one executing the run stops it (`on_stop`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

import orjson
import redis.asyncio as aioredis
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from redis.exceptions import RedisError

from graphrelay.async_wire import AsyncWire
from graphrelay.redis_clients import async_client

log = logging.getLogger(__name__)

END = "end"
SUBSCRIBE_TIMEOUT = 10.0
CONTROL = "!control"  # not a run id (a UUID) nor a thread channel
StopHandler = Callable[[str], None]
KEEP_SECONDS = 3600  # how long a resumable run's events are kept after its last one
KEEP_MAX = 10_000  # events kept per run (Redis trims to about this many, oldest first)
FROM_START = "-1"  # the Last-Event-ID that replays a run's kept events from the first
# Redis stream ids are two unsigned 64-bit numbers: 19 digits always fit, 20 may not.
_EVENT_ID = re.compile(r"-1|\d{1,19}(-\d{1,19})?")


class Event(NamedTuple):
    """One event of a stream."""

    name: str  # the SSE event name
    data: Any  # JSON-able
    id: str | None = None  # set on kept events: the SSE id a client resumes after


def valid_event_id(text: str) -> bool:
    """Whether `text` can be an id this server gave an event, or `FROM_START`."""
    return _EVENT_ID.fullmatch(text) is not None


def _order(event_id: str) -> tuple[int, ...]:
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


class RunEvents(Protocol):
    """Publish events on channels; subscribe to them from any replica that shares the store."""

    async def start(self) -> None:
        """Connect (before the first subscribe or publish)."""
        ...

    async def subscribe(self, channel: str, after: str | None = None) -> asyncio.Queue[Event]:
        """A queue that receives the channel's events from now on; with `after` (an event id,
        or `FROM_START`), first the channel's kept events after that one."""
        ...

    def unsubscribe(self, channel: str, queue: asyncio.Queue[Event]) -> None:
        """Stop delivering to `queue` (safe to call while being cancelled)."""
        ...

    def wanted(self, channel: str) -> bool:
        """False only when no one anywhere can be streaming the channel."""
        ...

    def publish(self, channel: str, event: str, data: Any, *, keep: bool = False) -> None:
        """Deliver one event to every subscriber of the channel; with `keep`, also keep it,
        under an id, for subscribers that come later with an earlier id."""
        ...

    def finish(self, run_id: str, status: str, *, keep: bool = False) -> None:
        """Deliver (and with `keep`, keep) a run's `end` event; its subscribers then stop."""
        ...

    def request_stop(self, run_id: str) -> None:
        """Ask every other replica to stop the run, if one executes it."""
        ...

    on_stop: StopHandler | None
    """Called with a run id when another replica asks for that run to stop."""

    async def close(self) -> None:
        """Send what is still queued and let connections go."""
        ...


class LocalEvents:
    """RunEvents within one process."""

    def __init__(self) -> None:
        self._queues: defaultdict[str, list[asyncio.Queue[Event]]] = defaultdict(list)
        self._kept: dict[str, deque[Event]] = {}
        # Ids are `START_MS-N`, as Redis writes them: those of a restarted process sort after
        # the ones a client kept from before, so its live events are not taken for replays.
        self._id_prefix = f"{time.time_ns() // 1_000_000}-"
        self._ids = itertools.count(1)
        self.on_stop: StopHandler | None = None

    async def start(self) -> None:
        """Nothing to connect."""

    async def subscribe(self, channel: str, after: str | None = None) -> asyncio.Queue[Event]:
        """A queue that receives the channel's events from now on; with `after`, first the
        channel's kept events after that id."""
        queue = self._add(channel)
        if after is not None:
            _put_first(queue, self._kept.get(channel, ()), after)
        return queue

    def _add(self, channel: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._queues[channel].append(queue)
        return queue

    def unsubscribe(self, channel: str, queue: asyncio.Queue[Event]) -> None:
        """Stop delivering to `queue`."""
        queues = self._queues.get(channel, [])
        if queue in queues:
            queues.remove(queue)
        if not queues:
            self._queues.pop(channel, None)

    def wanted(self, channel: str) -> bool:
        """True while someone in this process streams the channel."""
        return bool(self._queues.get(channel))

    def publish(self, channel: str, event: str, data: Any, *, keep: bool = False) -> None:
        """Deliver one event to every subscriber of the channel (and keep it, with `keep`)."""
        if not keep:
            self._deliver(channel, Event(event, data))
            return
        kept = Event(event, data, f"{self._id_prefix}{next(self._ids)}")
        self._kept.setdefault(channel, deque(maxlen=KEEP_MAX)).append(kept)
        self._deliver(channel, kept)

    def _deliver(self, channel: str, event: Event) -> None:
        for queue in self._queues.get(channel, []):
            queue.put_nowait(event)

    def finish(self, run_id: str, status: str, *, keep: bool = False) -> None:
        """Deliver a run's `end` event; kept events are forgotten `KEEP_SECONDS` later."""
        end = end_event(run_id, status)
        self.publish(run_id, end.name, end.data, keep=keep)
        if keep:
            self._forget_later(run_id)

    def _forget_later(self, channel: str) -> None:
        asyncio.get_running_loop().call_later(KEEP_SECONDS, self._kept.pop, channel, None)

    def request_stop(self, run_id: str) -> None:
        """No other replica: a run not executing here is not executing anywhere."""

    async def close(self) -> None:
        """Nothing to release."""


# Keep one event and publish it with the id Redis gave it, in one step: a subscriber that
# replays the stream and listens to the channel sees the same id in both.
_KEEP_LUA = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], '@' .. id .. ' ' .. ARGV[1])
return id
"""


class RedisEvents(LocalEvents):
    """RunEvents shared by every replica on one Redis, through pub/sub (kept events also in a
    Redis stream per run)."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self._url = url
        self._prefix = f"{prefix}:events:"
        self._kept_prefix = f"{prefix}:kept-events:"
        self._origin = uuid.uuid4().hex.encode()
        self._outbox: list[tuple[Any, ...]] = []  # commands the sender task sends
        self._has_mail = asyncio.Event()
        self._remote: set[str] = set()  # channels this process is subscribed to on Redis
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._control = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Connect, and start the tasks that send and receive."""
        self._wire = AsyncWire(self._url)
        self._client: aioredis.Redis = async_client(self._url)
        self._pubsub = self._client.pubsub()
        await self._pubsub.connect()  # type: ignore[no-untyped-call]
        self._reader = asyncio.create_task(self._receive())
        self._sender = asyncio.create_task(self._send())
        await self._subscribe_remote(CONTROL)

    async def _subscribe_remote(self, channel: str) -> None:
        async with self._control:
            if channel not in self._remote:
                ack = self._acks[channel] = asyncio.get_running_loop().create_future()
                await self._pubsub.subscribe(self._prefix + channel)
                await asyncio.wait_for(ack, SUBSCRIBE_TIMEOUT)
                self._remote.add(channel)

    async def subscribe(self, channel: str, after: str | None = None) -> asyncio.Queue[Event]:
        """A queue that receives the channel's events, here and from other replicas, from now
        on: it returns once Redis confirms the subscription. With `after`, the kept events
        after that id come first (read once subscribed, so none falls in between)."""
        queue = self._add(channel)
        try:
            await self._subscribe_remote(channel)
            if after is not None:
                _put_first(queue, await self._kept_after(channel, after), after)
        except BaseException:
            super().unsubscribe(channel, queue)
            raise
        return queue

    async def _kept_after(self, channel: str, after: str) -> list[Event]:
        start = "-" if after == FROM_START else f"({after}"
        entries = await self._wire.call("XRANGE", self._kept_prefix + channel, start, "+")
        kept = []
        for entry_id, fields in entries:
            body = orjson.loads(fields[1])
            kept.append(Event(body["event"], body["data"], entry_id.decode()))
        return kept

    def unsubscribe(self, channel: str, queue: asyncio.Queue[Event]) -> None:
        """Stop delivering to `queue`; leave the Redis channel in the background if unused."""
        super().unsubscribe(channel, queue)
        if not super().wanted(channel):
            task = asyncio.get_running_loop().create_task(self._leave(channel))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _leave(self, channel: str) -> None:
        async with self._control:
            if channel in self._remote and not super().wanted(channel):
                self._remote.discard(channel)
                await self._pubsub.unsubscribe(self._prefix + channel)

    def wanted(self, channel: str) -> bool:
        """Always: a client of another replica may be streaming the channel."""
        return True

    def request_stop(self, run_id: str) -> None:
        """Publish the request on the control channel, for the replica executing the run."""
        self._queue_remote(CONTROL, to_json({"event": "stop", "data": run_id}))

    def publish(self, channel: str, event: str, data: Any, *, keep: bool = False) -> None:
        """Deliver to this process's subscribers now, and queue it for the other replicas.
        A kept event reaches this process's subscribers, too, only back from Redis, with the
        id Redis gave it."""
        body = to_json({"event": event, "data": data})
        if keep:
            self._mail("EVAL", _KEEP_LUA, 2, self._kept_prefix + channel, self._prefix + channel,
                       body, KEEP_MAX, KEEP_SECONDS)  # fmt: skip
            return
        super().publish(channel, event, data)
        self._queue_remote(channel, body)

    def _queue_remote(self, channel: str, body: bytes) -> None:
        # The origin leads, outside the JSON: a replica skips its own events, which come
        # back to it whenever one of its clients streams the channel, without parsing them.
        self._mail("PUBLISH", self._prefix + channel, self._origin + b" " + body)

    def _mail(self, *command: Any) -> None:
        self._outbox.append(command)
        self._has_mail.set()

    def _forget_later(self, channel: str) -> None:
        """Nothing to do: kept events expire in Redis by themselves."""

    async def _send(self) -> None:
        while True:
            await self._has_mail.wait()
            self._has_mail.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._outbox = self._outbox, []
        if not batch:
            return
        try:
            await self._wire.execute(batch)
        except RedisError:  # other replicas' streams, and resumes of kept ones, miss this batch
            log.exception("publishing %d events failed", len(batch))

    async def _receive(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except RedisError:
                log.exception("event subscription broke; reconnecting")
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message["channel"].decode().removeprefix(self._prefix)
        if message["type"] == "subscribe":
            ack = self._acks.pop(channel, None)
            if ack is not None and not ack.done():
                ack.set_result(None)
        elif message["type"] == "message":
            origin, _, text = message["data"].partition(b" ")
            if origin == self._origin:
                return
            body = orjson.loads(text)
            if channel == CONTROL:
                if body["event"] == "stop" and self.on_stop is not None:
                    self.on_stop(str(body["data"]))
                return
            event_id = origin[1:].decode() if origin.startswith(b"@") else None
            self._deliver(channel, Event(body["event"], body["data"], event_id))

    async def close(self) -> None:
        """Send what is queued, then stop the tasks and close the connections."""
        self._sender.cancel()
        self._reader.cancel()
        await asyncio.gather(self._sender, self._reader, return_exceptions=True)
        await self._flush()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._client.aclose()
        self._wire.close()


def _put_first(queue: asyncio.Queue[Event], kept: Iterable[Event], after: str) -> None:
    """Put the kept events after `after` into `queue` ahead of the live ones it holds already,
    dropping live copies of events that `kept` holds (or that came before `after`)."""
    live = [queue.get_nowait() for _ in range(queue.qsize())]
    seen = _order(after)
    for event in kept:
        if event.id is not None and _order(event.id) > seen:
            queue.put_nowait(event)
            seen = _order(event.id)
    for event in live:
        if event.id is None or _order(event.id) > seen:
            queue.put_nowait(event)


def open_events(ledger_url: str, prefix: str) -> RunEvents:
    """Events over Redis when runs live there (replicas), else within this process."""
    if ledger_url.startswith(("redis://", "rediss://")):
        return RedisEvents(ledger_url, prefix)
    return LocalEvents()
