"""Run leases on SQLite and real Redis: renew by the owner only, claim only once expired."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphrelay.backends.redis.keys import RedisKeys
from graphrelay.backends.redis.leases import RedisLeases
from graphrelay.backends.sqlite.leases import SqliteLeases
from graphrelay.server.ports import RunLeases
from tests.support import services


@pytest.fixture(params=["sqlite", "redis"])
def leases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunLeases]:
    if request.param == "sqlite":
        yield SqliteLeases(tmp_path / "runs.sqlite")
        return
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    yield RedisLeases(services.REDIS_URL, RedisKeys(prefix))
    services.clear_prefix(prefix)


async def test_only_the_owner_renews(leases: RunLeases) -> None:
    await leases.grant("run-1", "replica-a", 30)
    assert await leases.renew("run-1", "replica-a", 30)
    assert not await leases.renew("run-1", "replica-b", 30)
    assert not await leases.renew("unknown", "replica-a", 30)


async def test_a_live_lease_cannot_be_claimed(leases: RunLeases) -> None:
    await leases.grant("run-1", "replica-a", 30)
    assert await leases.expired() == []
    assert not await leases.claim("run-1", "replica-b", 30)


async def test_an_expired_lease_is_claimed_exactly_once(leases: RunLeases) -> None:
    await leases.grant("run-1", "replica-a", 0.01)
    await asyncio.sleep(0.05)
    assert await leases.expired() == ["run-1"]

    claims = await asyncio.gather(*(leases.claim("run-1", f"replica-{n}", 30) for n in range(8)))

    assert claims.count(True) == 1
    winner = f"replica-{claims.index(True)}"
    assert await leases.renew("run-1", winner, 30)
    assert not await leases.renew("run-1", "replica-a", 30)  # the old owner lost it


async def test_released_runs_are_gone(leases: RunLeases) -> None:
    await leases.grant("run-1", "replica-a", 0.01)
    await leases.release("run-1")
    await asyncio.sleep(0.05)
    assert await leases.expired() == []
    assert not await leases.claim("run-1", "replica-b", 30)
