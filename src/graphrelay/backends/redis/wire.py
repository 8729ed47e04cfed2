"""graphrelay's Redis drivers: what every Redis adapter sends its commands through.

Each adapter writes an operation once, as a generator of command batches (sans-IO: it yields
`(atomic, commands)` and is sent the replies), and runs it with `run_ops` on a sync driver or
`arun_ops` on the asyncio one. Three drivers speak the same `execute(commands, atomic=)`:

- `Wire`, sync, for LangGraph's pool threads (the saver's sync methods);
- `AsyncWire`, for event loops (the API: run records, leases, locks, events, the saver's async
  methods, the ledger's awaited methods);
- `ClientWire`, redis-py's client with its reconnect-and-retry, for the ledger in workers
  (gevent and prefork) and the sweeper.

## Wire
A lean sync round trip to Redis: one send, one read, the least Python per command.

LangGraph calls a saver's `put` and `put_writes` from pool threads while the graph's own thread
keeps the GIL busy. Every blocking socket call releases the GIL, and getting it back can take
up to the interpreter's switch interval, so each syscall of a round trip costs far more than
the syscall; and every microsecond of Python in the pool thread is taken from the graph.
redis-py's pipeline made three or more syscalls per round trip (a `poll` when a pooled
connection is handed out, one `sendall` per 6 KB chunk, the reads) and spent about 15 µs of
Python packing and parsing each command. Here a round trip is one send of the commands packed
by hiredis, and reads parsed by a hiredis reader; redis-py only opens connections (TLS, AUTH,
SELECT).

The send on a plain socket is a non-blocking `send(2)` called through `ctypes.PyDLL`, which
keeps the GIL (Python's socket methods always release it): a batch fits the socket buffer, so
the call does not wait, and the thread goes straight on to its read instead of first queueing
for the GIL behind the graph's thread. Measured on the checkpointer benchmark: about 10 % less
time per superstep. Whatever it could not send goes through `sendall`; TLS sockets always do.

A stale reply cannot be left on an idle connection: a round trip that fails before reading
every reply disconnects the connection, which is then dropped.

## AsyncWire
Redis from asyncio with the least Python per command: all coroutines of an event loop
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
import ctypes
import os
import socket
import ssl
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Generator, Sequence
from typing import Any, Protocol, TypeVar

import hiredis
import redis
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

from graphrelay.backends.redis.clients import MAX_CONNECTIONS, RETRIES, WAIT_FOR_CONNECTION, backoff

T = TypeVar("T")
Command = tuple[Any, ...]
Batch = tuple[bool, list[Command]]  # (atomic, commands)
# An operation: yields batches, is sent each batch's replies, returns its result.
Ops = Generator[Batch, list[Any], T]


class SyncDriver(Protocol):
    """What `run_ops` sends batches through."""

    def execute(self, commands: Sequence[Command], *, atomic: bool = False) -> list[Any]:
        """The replies of `commands` (EXEC's replies when `atomic`)."""
        ...


class AsyncDriver(Protocol):
    """What `arun_ops` sends batches through."""

    def execute(self, commands: Sequence[Command], *, atomic: bool = False) -> Awaitable[list[Any]]:
        """The replies of `commands` (EXEC's replies when `atomic`)."""
        ...


def run_ops(driver: SyncDriver, ops: Ops[T]) -> T:
    """Run an operation to its result on a sync driver."""
    try:
        atomic, commands = next(ops)
        while True:
            atomic, commands = ops.send(driver.execute(commands, atomic=atomic))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def arun_ops(driver: AsyncDriver, ops: Ops[T]) -> T:
    """Run an operation to its result on an async driver."""
    try:
        atomic, commands = next(ops)
        while True:
            atomic, commands = ops.send(await driver.execute(commands, atomic=atomic))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


class ClientWire:
    """The driver interface on a redis-py client (its pool, reconnects and retries)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def execute(self, commands: Sequence[Command], *, atomic: bool = False) -> list[Any]:
        """The replies of `commands`; atomic: in MULTI/EXEC."""
        if len(commands) == 1 and not atomic:
            return [self.client.execute_command(*commands[0])]  # type: ignore[no-untyped-call]
        pipeline = self.client.pipeline(transaction=atomic)
        for command in commands:
            pipeline.execute_command(*command)  # type: ignore[no-untyped-call]
        return list(pipeline.execute())

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()


READ_SIZE = 1 << 17
SEND_FLAGS = getattr(socket, "MSG_DONTWAIT", 0) | getattr(socket, "MSG_NOSIGNAL", 0)


def _libc_send() -> Any:
    """libc's send(2), called with the GIL held; None where it cannot be loaded."""
    if not getattr(socket, "MSG_DONTWAIT", 0):
        return None
    try:
        send = ctypes.PyDLL(None).send
    except (OSError, AttributeError, TypeError):
        return None
    send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    send.restype = ctypes.c_ssize_t
    return send


LIBC_SEND = _libc_send()


class Link:
    """One open connection: redis-py's for the handshake, hiredis for the traffic."""

    def __init__(self, connection: redis.Connection) -> None:
        connection.connect()  # type: ignore[no-untyped-call]
        if connection._sock is None:
            raise redis.ConnectionError("Redis connection did not open")
        self.connection: redis.Connection = connection
        self.sock: socket.socket = connection._sock
        plain = not isinstance(self.sock, ssl.SSLSocket)
        self._send_now: Any = LIBC_SEND if plain else None
        self.reader: hiredis.Reader = hiredis.Reader(replyError=redis.ResponseError)
        self.buffer: bytearray = bytearray(READ_SIZE)

    def round_trip(self, commands: Sequence[Command]) -> list[Any]:
        """Send every command at once, read every reply; on any failure, disconnect."""
        try:
            self._send(b"".join([hiredis.pack_command(c) for c in commands]))
            return self._read(len(commands))
        except TimeoutError as error:
            self.close()
            raise redis.TimeoutError(f"Redis did not answer in time: {error}") from error
        except OSError as error:
            self.close()
            raise redis.ConnectionError(f"Redis connection failed: {error}") from error
        except BaseException:
            self.close()
            raise

    def _send(self, data: bytes) -> None:
        sent = 0
        if self._send_now is not None:
            sent = max(0, self._send_now(self.sock.fileno(), data, len(data), SEND_FLAGS))
        if sent < len(data):  # the buffer was full, or an error `sendall` will now report
            self.sock.sendall(data[sent:])

    def _read(self, count: int) -> list[Any]:
        replies: list[Any] = []
        while len(replies) < count:
            reply = self.reader.gets()
            if reply is not False:
                replies.append(reply)
                continue
            # Into a buffer kept for the connection: a fresh 128 KiB bytes per recv measured
            # about 23 µs more per call.
            size = self.sock.recv_into(self.buffer)
            if not size:
                raise redis.ConnectionError("Redis closed the connection")
            self.reader.feed(self.buffer, 0, size)  # type: ignore[arg-type]  # any buffer works
        return replies

    def close(self) -> None:
        """Close the socket."""
        self.connection.disconnect()  # type: ignore[no-untyped-call]


class Wire:
    """Sends command batches on idle connections kept by this object; thread-safe."""

    def __init__(self, url: str, *, max_connections: int = MAX_CONNECTIONS) -> None:
        pool = redis.ConnectionPool.from_url(url)
        self._kwargs = pool.connection_kwargs
        self._connection_class = pool.connection_class
        self._idle: list[Link] = []
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)

    def execute(self, commands: Sequence[Command], *, atomic: bool = False) -> list[Any]:
        """The replies of `commands`; atomic: in MULTI/EXEC, giving EXEC's replies.

        An error reply raises `redis.ResponseError` once every reply is read.
        """
        sent = [("MULTI",), *commands, ("EXEC",)] if atomic else list(commands)
        if not self._slots.acquire(timeout=WAIT_FOR_CONNECTION):
            raise redis.ConnectionError(f"no free Redis connection in {WAIT_FOR_CONNECTION} s")
        try:
            replies = self._round_trip(sent)
        finally:
            self._slots.release()
        raise_errors(sent, replies)
        results = replies[-1] if atomic else replies
        if results is None:
            raise redis.ResponseError("MULTI/EXEC was aborted")
        return list(results)

    def _round_trip(self, commands: list[Command]) -> list[Any]:
        link, reused = self._take()
        try:
            replies = link.round_trip(commands)
        except redis.ConnectionError:
            if not reused:
                raise
            # An idle connection the server closed (restart, idle timeout) fails on first
            # use without having run anything: run the batch once on a new connection.
            link = self._new_link()
            replies = link.round_trip(commands)
        with self._lock:
            self._idle.append(link)
        return replies

    def close(self) -> None:
        """Disconnect every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for link in idle:
            link.close()

    def _take(self) -> tuple[Link, bool]:
        """A connection, and whether it was used before."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's sockets are not ours to use
                self._idle, self._pid = [], os.getpid()
            if self._idle:
                return self._idle.pop(), True
        return self._new_link(), False

    def _new_link(self) -> Link:
        return Link(self._connection_class(**self._kwargs))


def raise_errors(commands: list[Command], replies: list[Any]) -> None:
    """Raise the first error reply, including those inside an EXEC reply."""
    for command, reply in zip(commands, replies, strict=True):
        if isinstance(reply, redis.ResponseError):
            raise reply
        if command[0] == "EXEC" and reply:
            raise_errors([("",)] * len(reply), reply)


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
