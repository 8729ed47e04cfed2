"""Redis from asyncio with the least Python per command: all coroutines of an event loop
pipeline their commands on one shared connection.

Why not `redis.asyncio`: with 300 coroutines making MULTI/EXEC and GET round trips, redis-py's
asyncio client cost 215 µs of CPU per round trip on our 2-core machine (a pooled connection
checked out and back, a timeout scope and a retry wrapper per command), and this driver 9 µs
(`benchmarks/redis_drivers.py`). The API makes dozens of round trips for every agent run
(run records, leases, thread locks, checkpoints, events), so that difference was a large part
of its CPU.

Redis answers a connection's commands in the order it got them, so one connection serves
every coroutine: a batch is packed by hiredis and queued whole (a MULTI..EXEC batch stays
contiguous), what every coroutine queued in one turn of the loop goes out in one write, and
the replies, parsed by a hiredis reader, go in order to the batches waiting for them. Because
the connection is shared, nothing sent here may depend on connection state: no WATCH, no
SUBSCRIBE, no blocking commands (pub/sub stays on redis-py).

A dropped connection fails the batches in flight; each is sent again on a new connection,
with backoff, for about 15 s, as `redis_clients` does (every write graphrelay makes is
idempotent). A connection that owes a reply for longer than `reply_timeout` is dropped the same
way, so a Redis that hangs cannot hang its callers forever.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
import redis
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

from graphrelay.redis_clients import RETRIES, backoff
from graphrelay.state.wire import Command, raise_errors

CONNECT_TIMEOUT = 10.0
REPLY_TIMEOUT = 30.0
WATCH_INTERVAL = 1.0


class _Batch:
    """Commands sent together, waiting for their replies."""

    __slots__ = ("count", "future", "replies", "sent_at")

    def __init__(self, future: asyncio.Future[list[Any]], count: int, sent_at: float) -> None:
        self.future = future
        self.count = count
        self.replies: list[Any] = []
        self.sent_at = sent_at


class _Link(asyncio.Protocol):
    """One connection: writes batches, hands replies to them in order."""

    def __init__(self, reply_timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.reader = hiredis.Reader(replyError=redis.ResponseError)
        self.waiting: deque[_Batch] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: redis.ConnectionError | None = None
        self.reply_timeout = reply_timeout
        self._watchdog: asyncio.TimerHandle | None = None
        self._outbox: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def send(self, commands: Sequence[Command]) -> asyncio.Future[list[Any]]:
        """Write `commands` at once; a future of their replies."""
        if self.lost is not None or self.transport is None:
            raise self.lost or redis.ConnectionError("Redis connection is not open")
        batch = _Batch(self.loop.create_future(), len(commands), self.loop.time())
        self.waiting.append(batch)
        if not self._outbox:
            self.loop.call_soon(self._flush)
        self._outbox += [hiredis.pack_command(c) for c in commands]
        if self._watchdog is None:
            self._watchdog = self.loop.call_later(WATCH_INTERVAL, self._watch)
        return batch.future

    def _flush(self) -> None:
        """Write what this turn of the loop queued in one go: one syscall for many batches."""
        outbox, self._outbox = self._outbox, []
        if self.lost is None and self.transport is not None:
            self.transport.write(b"".join(outbox))

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.waiting
        try:
            while (reply := self.reader.gets()) is not False:
                batch = waiting[0]
                batch.replies.append(reply)
                if len(batch.replies) == batch.count:
                    waiting.popleft()
                    if not batch.future.done():  # its caller may have been cancelled
                        batch.future.set_result(batch.replies)
        except (hiredis.ProtocolError, IndexError) as error:  # garbled, or a reply nobody asked
            self._drop(f"Redis connection out of step: {error!r}")

    def _watch(self) -> None:
        self._watchdog = None
        if not self.waiting or self.lost is not None:
            return
        if self.loop.time() - self.waiting[0].sent_at > self.reply_timeout:
            self._drop(f"Redis did not answer in {self.reply_timeout:g} s")
            return
        self._watchdog = self.loop.call_later(WATCH_INTERVAL, self._watch)

    def _drop(self, why: str) -> None:
        self._fail(redis.ConnectionError(why))
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(redis.ConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def _fail(self, error: redis.ConnectionError) -> None:
        self.lost = self.lost or error
        while self.waiting:
            batch = self.waiting.popleft()
            if not batch.future.done():
                batch.future.set_exception(self.lost)

    def close(self) -> None:
        """Close the connection (replies still owed fail)."""
        if self.transport is not None:
            self.transport.close()


class AsyncWire:
    """Sends command batches to the Redis at `url` from any event loop (one connection each)."""

    def __init__(
        self, url: str, *, reply_timeout: float = REPLY_TIMEOUT, retries: int = RETRIES
    ) -> None:
        self._options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self._reply_timeout = reply_timeout
        self._retries = retries
        self._links: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Link] = (
            weakref.WeakKeyDictionary()
        )
        self._opening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[_Link]] = (
            weakref.WeakKeyDictionary()
        )

    async def call(self, *command: Any) -> Any:
        """The reply of one command."""
        return (await self.execute([command]))[0]

    async def execute(self, commands: Sequence[Command], *, atomic: bool = False) -> list[Any]:
        """The replies of `commands`; atomic: in MULTI/EXEC, giving EXEC's replies.

        An error reply raises `redis.ResponseError` once every reply is read.
        """
        sent = [("MULTI",), *commands, ("EXEC",)] if atomic else commands
        if not sent:
            return []  # no reply will come to wait for
        replies = await self._round_trip(sent)
        raise_errors(list(sent), replies)
        results = replies[-1] if atomic else replies
        if results is None:
            raise redis.ResponseError("MULTI/EXEC was aborted")
        return list(results)

    async def _round_trip(self, commands: Sequence[Command]) -> list[Any]:
        delays = backoff()
        for attempt in range(self._retries + 1):
            try:
                link = self._links.get(asyncio.get_running_loop())
                if link is None or link.lost is not None:
                    link = await self._link()
                return await link.send(commands)
            except (redis.ConnectionError, redis.TimeoutError):
                if attempt == self._retries:
                    raise
                await asyncio.sleep(delays.compute(attempt))
        raise AssertionError("unreachable")

    async def _link(self) -> _Link:
        """This loop's connection, opened once however many callers ask at the same time."""
        loop = asyncio.get_running_loop()
        opening = self._opening.get(loop)
        if opening is None:
            opening = self._opening[loop] = loop.create_task(self._open())
            opening.add_done_callback(lambda _: self._opening.pop(loop, None))
        return await asyncio.shield(opening)  # one caller cancelled must not stop the others

    async def _open(self) -> _Link:
        loop = asyncio.get_running_loop()
        options = self._options
        try:
            if options.get("connection_class") is UnixDomainSocketConnection:
                opened = loop.create_unix_connection(self._new_link, options["path"])
            else:
                host, port = options.get("host", "localhost"), options.get("port", 6379)
                opened = loop.create_connection(self._new_link, host, port, ssl=self._tls())
            _, link = await asyncio.wait_for(opened, CONNECT_TIMEOUT)
        except (TimeoutError, OSError) as error:
            raise redis.ConnectionError(f"cannot connect to Redis: {error!r}") from error
        handshake = self._handshake()
        if handshake:
            raise_errors(handshake, await link.send(handshake))
        self._links[loop] = link
        return link

    def _new_link(self) -> _Link:
        return _Link(self._reply_timeout)

    def _handshake(self) -> list[Command]:
        options, commands = self._options, []
        if options.get("password"):
            user = options.get("username")
            commands.append(("AUTH", user, options["password"]) if user else
                            ("AUTH", options["password"]))  # fmt: skip
        if options.get("db"):
            commands.append(("SELECT", options["db"]))
        return commands

    def _tls(self) -> ssl.SSLContext | None:
        if self._options.get("connection_class") is not SSLConnection:
            return None
        context = ssl.create_default_context()
        if self._options.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def close(self) -> None:
        """Close the connections of every loop (from that loop's thread, if it runs)."""
        for loop, link in list(self._links.items()):
            if loop.is_closed():
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop or not loop.is_running():
                link.close()
            else:
                loop.call_soon_threadsafe(link.close)
        self._links.clear()
