"""Stacks of real processes: embedded (files and SQLite) and production (RabbitMQ and Redis,
with graphrelay's Redis checkpointer). Each is started once per test module and torn down
after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import services
from tests.support.stack import Stack, production_env, stack_env


def _embedded(data_dir: Path) -> Iterator[Stack]:
    stack = Stack(stack_env(data_dir, GRAPHRELAY_PROFILE="embedded"), data_dir)
    try:
        stack.start("api", "io", "cpu")
        yield stack
    finally:
        stack.stop()


def _production(data_dir: Path) -> Iterator[Stack]:
    services.check_redis()
    vhost = services.new_vhost()
    prefix = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    stack = Stack(production_env(data_dir, vhost, prefix), data_dir)
    try:
        stack.start("api", "io", "cpu")
        yield stack
    finally:
        stack.stop()
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)


@pytest.fixture(scope="module")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API and workers on the embedded profile."""
    yield from _embedded(tmp_path_factory.mktemp("embedded"))


@pytest.fixture(scope="module")
def production_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API and workers on RabbitMQ and Redis (ledger, results and checkpoints)."""
    yield from _production(tmp_path_factory.mktemp("production"))


@pytest.fixture(params=["embedded", "production"])
def stack(request: pytest.FixtureRequest) -> Stack:
    """Each test that takes `stack` runs once per profile."""
    result: Stack = request.getfixturevalue(f"{request.param}_stack")
    return result


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh Redis key prefix in the test db, its keys removed after the test."""
    services.check_redis()
    name = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    yield name
    services.clear_prefix(name)
