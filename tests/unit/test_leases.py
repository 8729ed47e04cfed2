"""Run leases on SQLite and real Redis: renew by the owner only, claim only once expired."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from graphrelay.api.leases import RedisLeases, RunLeases, SqliteLeases
from tests.support import services


@pytest.fixture(params=["sqlite", "redis"])
def leases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunLeases]:
    if request.param == "sqlite":
        yield SqliteLeases(tmp_path / "runs.sqlite")
        return
    services.check_redis()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    yield RedisLeases(services.REDIS_URL, prefix)
    services.clear_prefix(prefix)


def test_only_the_owner_renews(leases: RunLeases) -> None:
    leases.grant("run-1", "replica-a", 30)
    assert leases.renew("run-1", "replica-a", 30)
    assert not leases.renew("run-1", "replica-b", 30)
    assert not leases.renew("unknown", "replica-a", 30)


def test_a_live_lease_cannot_be_claimed(leases: RunLeases) -> None:
    leases.grant("run-1", "replica-a", 30)
    assert leases.expired() == []
    assert not leases.claim("run-1", "replica-b", 30)


def test_an_expired_lease_is_claimed_exactly_once(leases: RunLeases) -> None:
    leases.grant("run-1", "replica-a", 0.01)
    time.sleep(0.05)
    assert leases.expired() == ["run-1"]

    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda n: leases.claim("run-1", f"replica-{n}", 30), range(8)))

    assert claims.count(True) == 1
    winner = f"replica-{claims.index(True)}"
    assert leases.renew("run-1", winner, 30)
    assert not leases.renew("run-1", "replica-a", 30)  # the old owner lost it


def test_released_runs_are_gone(leases: RunLeases) -> None:
    leases.grant("run-1", "replica-a", 0.01)
    leases.release("run-1")
    time.sleep(0.05)
    assert leases.expired() == []
    assert not leases.claim("run-1", "replica-b", 30)
