"""A production-profile graphrelay for benchmarks: API and workers as child processes on a
fresh RabbitMQ vhost and Redis key prefix (db 14), removed again afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from graphrelay.config import new_webhook_secret
from graphrelay.testing.processes import free_port, spawn, stop_all, wait_for_log, wait_healthy

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/14"


@dataclass
class Deployment:
    """The environment of one benchmark deployment and the processes started in it."""

    env: dict[str, str]
    prefix: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Where the API listens."""
        return f"http://127.0.0.1:{self.env['GRAPHRELAY_API_PORT']}"

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start `api` or an `io` worker and wait until it is ready."""
        logs = Path(self.env["GRAPHRELAY_DATA_DIR"]) / "logs"
        args = ["serve", "--log-level", "warning"] if name == "api" else ["worker", "--pool", name]
        process = spawn(args, self.env, logs / f"{name}.log", cwd=REPO)
        self.processes[name] = process
        if name == "api":
            wait_healthy(self.url, process)
        else:
            wait_for_log(logs / f"{name}.log", " ready.", process)
        return process


@contextmanager
def deployment(script: Path, **extra_env: str) -> Iterator[Deployment]:
    """A deployment whose scripted model plays `script`; nothing started yet."""
    vhost, prefix = f"graphrelay-bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    env = {
        **os.environ,
        "GRAPHRELAY_PROFILE": "production",
        "GRAPHRELAY_DATA_DIR": tempfile.mkdtemp(prefix="graphrelay-bench-"),
        "GRAPHRELAY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "GRAPHRELAY_RESULT_BACKEND": REDIS_URL, "GRAPHRELAY_LEDGER_URL": REDIS_URL,
        "GRAPHRELAY_CHECKPOINTER_URL": REDIS_URL, "GRAPHRELAY_KEY_PREFIX": prefix,
        "GRAPHRELAY_API_PORT": str(free_port()), "GRAPHRELAY_WEBHOOK_SECRET": new_webhook_secret(),
        "GRAPHRELAY_TOOL_MODULES": json.dumps(["benchmarks.graphs"]),
        "GRAPHRELAY_MODEL": f"scripted:{script}",
        "PYTHONPATH": str(REPO),
        **extra_env,
    }  # fmt: skip
    running = Deployment(env, prefix)
    try:
        yield running
    finally:
        stop_all(list(running.processes.values()))
        _rabbitmqctl("delete_vhost", vhost)
        forget(prefix)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def forget(prefix: str, url: str = REDIS_URL) -> None:
    """Delete every key under `prefix` from the benchmark db (or the db at `url`)."""
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


@contextmanager
def api_and_io_worker(script: Path, **extra_env: str) -> Iterator[str]:
    """A deployment with the API and one io worker running; yields the API's URL."""
    with deployment(script, **extra_env) as running:
        running.start("api")
        running.start("io")
        yield running.url
