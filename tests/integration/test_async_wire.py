"""The API's asyncio Redis driver, on a real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis

from graphrelay.backends.redis.wire import AsyncWire
from tests.support import services


async def test_replies_in_order_plain_and_atomic(prefix: str) -> None:
    wire, key = AsyncWire(services.REDIS_URL), f"{prefix}:k"

    assert await wire.execute([("SET", key, "v"), ("GET", key)]) == [b"OK", b"v"]
    assert await wire.execute([("APPEND", key, "w"), ("GET", key)], atomic=True) == [2, b"vw"]
    assert await wire.call("GET", key) == b"vw"
    assert await wire.execute([]) == []
    wire.close()


async def test_many_coroutines_share_one_connection_and_each_gets_its_own_replies(
    prefix: str,
) -> None:
    wire = AsyncWire(services.REDIS_URL)

    async def one(n: int) -> list[object]:
        key = f"{prefix}:{n}"
        return await wire.execute([("SET", key, n), ("INCR", key), ("GET", key)], atomic=n % 2 == 0)

    replies = await asyncio.gather(*(one(n) for n in range(500)))

    assert replies == [[b"OK", n + 1, str(n + 1).encode()] for n in range(500)]
    clients = await wire.call("CLIENT", "LIST")
    own = [line for line in clients.decode().splitlines() if f"id={await _id(wire)}" in line]
    assert len(own) == 1
    wire.close()


async def _id(wire: AsyncWire) -> int:
    return int(await wire.call("CLIENT", "ID"))


async def test_an_error_reply_raises_and_leaves_the_connection_in_step(prefix: str) -> None:
    wire, key = AsyncWire(services.REDIS_URL), f"{prefix}:k"
    await wire.call("SET", key, "not a number")

    with pytest.raises(redis.ResponseError, match="not an integer"):
        await wire.execute([("INCR", key), ("GET", key)])
    with pytest.raises(redis.ResponseError, match="not an integer"):
        await wire.execute([("INCR", key)], atomic=True)

    assert await wire.call("GET", key) == b"not a number"
    wire.close()


async def test_a_cancelled_caller_does_not_shift_the_replies_of_others(prefix: str) -> None:
    wire, key = AsyncWire(services.REDIS_URL), f"{prefix}:k"
    await wire.execute([("SET", key, "kept"), ("SET", f"{key}:2", "other")])

    sent = asyncio.ensure_future(wire.call("GET", f"{key}:2"))
    await asyncio.sleep(0)  # queued and written: its reply will come
    sent.cancel()
    replies = await asyncio.gather(*(wire.call("GET", key) for _ in range(20)))

    assert replies == [b"kept"] * 20
    wire.close()


async def test_a_killed_connection_is_replaced_and_the_batch_sent_again(prefix: str) -> None:
    wire, key = AsyncWire(services.REDIS_URL), f"{prefix}:k"
    old_id = await _id(wire)
    admin = redis.Redis.from_url(services.REDIS_URL)
    admin.client_kill_filter(_id=old_id)

    assert await wire.execute([("SET", key, "again"), ("GET", key)]) == [b"OK", b"again"]
    assert await _id(wire) != old_id
    admin.close()
    wire.close()


async def test_a_redis_that_does_not_answer_fails_after_the_reply_timeout() -> None:
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    wire = AsyncWire(f"redis://127.0.0.1:{port}/0", reply_timeout=0.5, retries=1)

    with pytest.raises(redis.ConnectionError, match="did not answer"):
        await asyncio.wait_for(wire.call("PING"), 30)
    wire.close()
    silent.close()
