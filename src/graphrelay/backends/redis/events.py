"""Run events shared by every replica on one Redis, through pub/sub.

`RedisEvents` carries every event over Redis pub/sub, so a client may stream a run from any
replica: events reach the local subscribers at once, and are PUBLISHed in order (pipelined by
one sender task, through `AsyncWire`) for the other replicas, which subscribe on Redis only to
the channels their clients stream. A replica drops its own events when they come back.

Kept events (runs started with `stream_resumable`) go to a Redis stream per run, appended and
published in one Lua call, so the id a replica's clients see is the one every replica sees,
and a subscriber that replays from the stream and listens on pub/sub can tell the two copies
of an event apart. They expire `KEEP_SECONDS` after the run's last one, or sooner with a
shorter thread TTL, and a thread's deletion deletes them (`forget`).

Stop requests travel the same way: a replica asked to stop a run it does not execute
publishes the request on the control channel, which every replica subscribes to, and the
one executing the run stops it (`on_stop`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from graphrelay.backends.memory import LocalEvents
from graphrelay.backends.redis.clients import async_client
from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.redis.wire import AsyncWire
from graphrelay.server.streaming import (
    FROM_START,
    KEEP_MAX,
    KEEP_SECONDS,
    Event,
    put_first,
    to_json,
)

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT = 10.0
CONTROL = "!control"  # not a run id (a UUID) nor a thread channel


# Keep one event and publish it with the id Redis gave it, in one step: a subscriber that
# replays the stream and listens to the channel sees the same id in both.
_KEEP_LUA = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], '@' .. id .. ' ' .. ARGV[1])
return id
"""


class RedisEvents(LocalEvents):
    """RunEvents shared by every replica on one Redis, through pub/sub (kept events also in a
    Redis stream per run)."""

    def __init__(self, url: str, keys: RedisKeys, ttl_seconds: float | None = None) -> None:
        """`ttl_seconds`: the thread TTL; kept events last no longer than it."""
        super().__init__()
        self._url = url
        self._keys = keys
        self._keep_ms = int(min(KEEP_SECONDS, ttl_seconds or KEEP_SECONDS) * 1000)
        self._prefix = keys.events_prefix
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
                await self._pubsub.subscribe(self._keys.events(channel))
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
                put_first(queue, await self._kept_after(channel, after), after)
        except BaseException:
            super().unsubscribe(channel, queue)
            raise
        return queue

    async def _kept_after(self, channel: str, after: str) -> list[Event]:
        start = "-" if after == FROM_START else f"({after}"
        entries = await self._wire.call("XRANGE", self._keys.kept_events(channel), start, "+")
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
                await self._pubsub.unsubscribe(self._keys.events(channel))

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
            kept, live = self._keys.kept_events(channel), self._keys.events(channel)
            self._mail("EVAL", _KEEP_LUA, 2, kept, live, body, KEEP_MAX, self._keep_ms)
            return
        super().publish(channel, event, data)
        self._queue_remote(channel, body)

    async def forget(self, run_ids: Sequence[str]) -> None:
        """Delete the kept events of these runs (after those still queued are sent)."""
        await self._flush()
        if run_ids:
            await self._wire.call("DEL", *[self._keys.kept_events(run_id) for run_id in run_ids])

    def _queue_remote(self, channel: str, body: bytes) -> None:
        # The origin leads, outside the JSON: a replica skips its own events, which come
        # back to it whenever one of its clients streams the channel, without parsing them.
        self._mail("PUBLISH", self._keys.events(channel), self._origin + b" " + body)

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
