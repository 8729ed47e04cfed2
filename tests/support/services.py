"""Per-test-run resources on the shared services: a RabbitMQ vhost, a PostgreSQL database,
a Redis key prefix. A missing service fails the test run in CI instead of skipping."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

REDIS_URL = "redis://127.0.0.1:6379/9"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def service_missing(what: str, error: Exception) -> None:
    """Fail in CI, skip elsewhere, with the reason."""
    message = f"{what} is not reachable ({error}); start it (see .ci/services) and run again"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def check_redis() -> None:
    """Redis answers a ping."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        service_missing("Redis at 127.0.0.1:6379", exc)


def new_vhost() -> str:
    """A fresh RabbitMQ vhost guest may use."""
    name = f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    try:
        _rabbitmqctl("add_vhost", name)
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    except (OSError, subprocess.SubprocessError) as exc:
        service_missing("RabbitMQ (rabbitmqctl)", exc)
    return name


def drop_vhost(name: str) -> None:
    """Remove a vhost made by `new_vhost`."""
    _rabbitmqctl("delete_vhost", name)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def new_database() -> str:
    """A fresh PostgreSQL database; its URL."""
    name = f"graphrelay_test_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as db:
            db.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        service_missing("PostgreSQL at 127.0.0.1:5432", exc)
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_database(url: str) -> None:
    """Drop a database made by `new_database`."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def keyspace(prefix: str) -> dict[str, Any]:
    """Every key under `prefix` in the test db (SCAN), with the members of each set, sorted
    set and hash, and the type of any other key."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    found: dict[str, Any] = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        kind = client.type(key)
        if kind == "set":
            found[key] = sorted(client.smembers(key))
        elif kind == "zset":
            found[key] = client.zrange(key, 0, -1)
        elif kind == "hash":
            found[key] = sorted(client.hkeys(key))
        else:
            found[key] = kind
    client.close()
    return found


def key_kinds(found: dict[str, Any], prefix: str) -> set[str]:
    """The key families in a `keyspace`: each name after the prefix, up to its first id."""
    return {key.removeprefix(f"{prefix}:").split(":", 1)[0] for key in found}


def clear_prefix(prefix: str) -> None:
    """Delete this run's keys (and only them) from the test Redis db."""
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


class PrivateRedis:
    """A redis-server of the test's own, with AOF, on a free port under a temp dir."""

    def __init__(self, directory: Path) -> None:
        from graphrelay.testing.processes import free_port

        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
             "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise TimeoutError(f"private redis-server on {self.port} did not start")

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no final save."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class PrivateRabbit:
    """A RabbitMQ node of the test's own (own name, ports and data dir), so a test can stop and
    start it without touching the machine's broker. Its data survives a restart."""

    def __init__(self, directory: Path) -> None:
        from graphrelay.testing.processes import free_port

        self.directory = directory
        self.port = free_port()
        self.node = f"graphrelay-{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        (directory / "log").mkdir(parents=True, exist_ok=True)
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (directory / "enabled_plugins").write_text("[].\n")
        self.env = {
            **os.environ,
            "HOME": str(directory),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
        }

    def _run(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [f"/usr/lib/rabbitmq/bin/{script}", *args], env=self.env, cwd=self.directory,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def start(self) -> None:
        """Start the node and wait until it takes connections."""
        self._run("rabbitmq-server", "-detached")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self._run("rabbitmqctl", "-n", self.node, "await_startup").returncode == 0:
                return
            time.sleep(0.5)
        raise TimeoutError(f"private RabbitMQ {self.node} did not start; see {self.directory}")

    def stop(self) -> None:
        """Stop the node (it writes what it holds to disk first)."""
        self._run("rabbitmqctl", "-n", self.node, "stop")
