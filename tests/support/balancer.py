"""A TCP load balancer on loopback, for tests where a client must not notice which replica
it talks to: each new connection goes to the first backend that accepts it, and a connection
whose backend dies is closed, as a real balancer would do."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence


@contextlib.asynccontextmanager
async def balancer(ports: Sequence[int]) -> AsyncIterator[str]:
    """Serve on a free loopback port while the block runs; yields its base URL."""

    async def connect(client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        for port in ports:
            try:
                backend, to_backend = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            to_client.close()
            return
        await asyncio.gather(_pipe(client, to_backend), _pipe(backend, to_client))

    server = await asyncio.start_server(connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        sink.close()
