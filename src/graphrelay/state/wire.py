"""A lean sync round trip to Redis: one send, one read, no pool health check.

LangGraph calls a saver's `put` and `put_writes` from pool threads while the graph's own thread
keeps the GIL busy. Every blocking socket call releases the GIL, and getting it back can take
up to the interpreter's switch interval, so each syscall of a round trip costs far more than
the syscall. redis-py's pipeline makes three or more per round trip: a `poll` when a pooled
connection is handed out (to find stale replies), one `sendall` per 6 KB chunk, then the read.
Here a round trip is one `sendall` of the joined commands and the reads its replies need.

A stale reply cannot be left on an idle connection: a round trip that fails in any way
disconnects the connection before it is put back, so the next use reconnects.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import redis

from graphrelay.redis_clients import MAX_CONNECTIONS, WAIT_FOR_CONNECTION

Command = tuple[Any, ...]


class Wire:
    """Sends command batches on idle connections kept by this object; thread-safe."""

    def __init__(self, url: str, *, max_connections: int = MAX_CONNECTIONS) -> None:
        pool = redis.ConnectionPool.from_url(url)
        self._kwargs = pool.connection_kwargs
        self._connection_class = pool.connection_class
        self._idle: list[redis.Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)

    def execute(self, commands: Sequence[Command], *, atomic: bool = False) -> list[Any]:
        """The replies of `commands`; atomic: in MULTI/EXEC, giving EXEC's replies."""
        sent = [("MULTI",), *commands, ("EXEC",)] if atomic else list(commands)
        if not self._slots.acquire(timeout=WAIT_FOR_CONNECTION):
            raise redis.ConnectionError(f"no free Redis connection in {WAIT_FOR_CONNECTION} s")
        try:
            connection, reused = self._take()
            try:
                replies = _round_trip(connection, sent)
            except redis.ConnectionError:
                if not reused:
                    raise
                # An idle connection the server closed (restart, idle timeout) fails on first
                # use without having run anything: run the batch once on a new connection.
                connection = self._make()
                replies = _round_trip(connection, sent)
            self._give_back(connection)
        finally:
            self._slots.release()
        return list(replies[-1]) if atomic else replies

    def close(self) -> None:
        """Disconnect every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.disconnect()  # type: ignore[no-untyped-call]

    def _take(self) -> tuple[redis.Connection, bool]:
        """A connection, and whether it was used before."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._make(), False

    def _make(self) -> redis.Connection:
        connection: redis.Connection = self._connection_class(**self._kwargs)
        return connection

    def _give_back(self, connection: redis.Connection) -> None:
        with self._lock:
            self._idle.append(connection)


def _round_trip(connection: redis.Connection, commands: list[Command]) -> list[Any]:
    """Send every command at once, read every reply; on any failure, disconnect."""
    try:
        packed = b"".join(connection.pack_commands(commands))  # type: ignore[no-untyped-call]
        connection.send_packed_command([packed], check_health=False)  # type: ignore[no-untyped-call]
        return [connection.read_response() for _ in commands]
    except BaseException:
        connection.disconnect()  # type: ignore[no-untyped-call]
        raise
