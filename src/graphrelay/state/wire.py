"""A lean sync round trip to Redis: one send, one read, the least Python per command.

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
"""

from __future__ import annotations

import ctypes
import os
import socket
import ssl
import threading
from collections.abc import Sequence
from typing import Any

import hiredis
import redis

from graphrelay.redis_clients import MAX_CONNECTIONS, WAIT_FOR_CONNECTION

Command = tuple[Any, ...]
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
