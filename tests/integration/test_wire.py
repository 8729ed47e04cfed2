"""The saver's lean sync Redis driver, on a real Redis."""

from __future__ import annotations

import pytest
import redis

from graphrelay.backends.redis import wire as wire_module
from graphrelay.backends.redis.wire import Wire
from tests.support import services


def test_a_batch_gives_every_reply_and_an_atomic_one_the_exec_replies(prefix: str) -> None:
    wire, key = Wire(services.REDIS_URL), f"{prefix}:k"

    assert wire.execute([("SET", key, "v"), ("GET", key)]) == [b"OK", b"v"]
    assert wire.execute([("APPEND", key, "w"), ("GET", key)], atomic=True) == [2, b"vw"]
    wire.close()


def test_an_error_reply_raises_and_the_connection_stays_usable(prefix: str) -> None:
    wire, key = Wire(services.REDIS_URL), f"{prefix}:k"
    wire.execute([("SET", key, "not a number")])

    with pytest.raises(redis.ResponseError, match="not an integer"):
        wire.execute([("INCR", key), ("GET", key)])
    with pytest.raises(redis.ResponseError, match="not an integer"):
        wire.execute([("INCR", key)], atomic=True)

    with pytest.raises(redis.ResponseError, match="not an integer"):
        wire.execute([("MULTI",), ("INCR", key), ("EXEC",)])  # as `put` queues its commands

    assert wire.execute([("GET", key)]) == [b"not a number"]
    wire.close()


def test_a_connection_the_server_closed_is_replaced(prefix: str) -> None:
    wire = Wire(services.REDIS_URL)
    [own_id] = wire.execute([("CLIENT", "ID")])
    admin = redis.Redis.from_url(services.REDIS_URL)
    admin.client_kill_filter(_id=own_id)

    [new_id] = wire.execute([("CLIENT", "ID")])

    assert new_id != own_id
    admin.close()
    wire.close()


def test_without_the_libc_send_every_batch_goes_through_sendall(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire_module, "LIBC_SEND", None)  # as on TLS or without libc
    wire, key = Wire(services.REDIS_URL), f"{prefix}:k"

    assert wire.execute([("SET", key, "v" * 300_000), ("STRLEN", key)]) == [b"OK", 300_000]
    wire.close()


def test_a_batch_larger_than_the_socket_buffer_is_sent_whole(prefix: str) -> None:
    wire, key = Wire(services.REDIS_URL), f"{prefix}:k"

    assert wire.execute([("SET", key, "v" * 8_000_000), ("STRLEN", key)]) == [b"OK", 8_000_000]
    wire.close()
