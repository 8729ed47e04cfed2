"""The composition root of a worker process: the Celery app it loads, its services, and the
command line that starts it.

`graphrelay worker --pool io|cpu` runs `celery -A graphrelay.runtime.worker worker` for one
work queue (its command line: `launch.py`): `io` on a gevent pool (many greenlets, for
network-bound tools), `cpu` on a prefork pool (one process a core, one message at a time).
The app registers a task for every background tool of the configured tool modules, each given
this process's services (`worker_services`, built once per process, after the fork).

The app also carries the sweeper as a task, `graphrelay.sweep`, which `celery beat` schedules
every `sweeper_period_seconds` on the cpu queue for deployments that prefer beat to a sweeper
process: `celery -A graphrelay.runtime.worker beat`.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from celery.signals import worker_init

from graphrelay.backends import open_ledger
from graphrelay.backends.celery.app import SWEEP_TASK, create_celery_app, declare_topology
from graphrelay.backends.celery.tasks import coroutine_runner, register_tools
from graphrelay.bridge.notifier import WebhookNotifier
from graphrelay.bridge.tool import registered_tools
from graphrelay.bridge.worker import WorkerServices
from graphrelay.config import load_settings


@functools.cache
def worker_services() -> WorkerServices:
    """This worker process's services, built from its settings on first use."""
    settings = load_settings()
    return WorkerServices(
        ledger=open_ledger(settings.ledger_url, settings.key_prefix, settings.thread_ttl_seconds),
        notifier=WebhookNotifier(
            settings.signing_secret,
            max_attempts=settings.callback_max_attempts,
            initial_backoff=settings.callback_backoff_initial,
            max_backoff=settings.callback_backoff_max,
        ),
        max_deliveries=settings.max_deliveries,
        run_coroutine=coroutine_runner(),
    )


app = create_celery_app(load_settings())
register_tools(app, registered_tools(), worker_services)


def _declare_topology(**_: Any) -> None:
    declare_topology(app)


def _one_result_backend(**_: Any) -> None:
    # Celery keeps a result backend per thread, and a gevent worker's every greenlet counts
    # as a thread: each task built a Redis client of its own (and read package metadata to
    # name it), a fifth of the io worker's CPU. Our tasks store no result: one will do.
    backend = app.backend
    for task in app.tasks.values():
        task.backend = backend


worker_init.connect(_declare_topology, weak=False)
worker_init.connect(_one_result_backend, weak=False)


@app.task(name=SWEEP_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def sweep() -> None:
    """One sweeper round in this worker process."""
    from graphrelay.runtime.sweeper import sweep as sweep_once

    asyncio.run(sweep_once(load_settings(), once=True))
