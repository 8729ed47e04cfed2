"""Command lines of graphrelay's processes: the Celery worker of one work queue."""

from __future__ import annotations

import os
import socket
import sys

from graphrelay.config import Settings, WorkQueue

WORKER_APP = "graphrelay.runtime.worker"  # the module `celery -A` loads in a worker


def worker_argv(pool: WorkQueue, settings: Settings, loglevel: str = "info") -> list[str]:
    """The `celery worker` command line for `pool`."""
    common = [
        sys.executable, "-m", "celery", "-A", WORKER_APP, "worker",
        "--loglevel", loglevel, "--queues", pool,
        "--hostname", f"{pool}-{os.getpid()}@{socket.gethostname()}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    if pool == "io":
        return [*common, "--pool", "gevent", "--concurrency", str(settings.io_concurrency)]
    # One process a core, and each takes one message at a time so long tasks don't hoard.
    return [
        *common, "--pool", "prefork", "--concurrency", str(settings.cpu_concurrency),
        "--prefetch-multiplier", "1",
    ]  # fmt: skip


def exec_worker(pool: WorkQueue, settings: Settings, loglevel: str = "info") -> None:
    """Replace this process with the worker, so signals reach Celery directly."""
    argv = worker_argv(pool, settings, loglevel)
    os.execv(argv[0], argv)
