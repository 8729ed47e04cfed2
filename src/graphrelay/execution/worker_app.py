"""The Celery app a worker process loads (`celery -A graphrelay.execution.worker_app`).

It also carries the sweeper as a task, `graphrelay.sweep`, which `celery beat` schedules every
`sweeper_period_seconds` on the cpu queue for deployments that prefer beat to a sweeper
process: `celery -A graphrelay.execution.worker_app beat`.
"""

import asyncio
from typing import Any

from celery.signals import worker_init

from graphrelay.config import load_settings
from graphrelay.execution.celery_app import SWEEP_TASK, create_celery_app, declare_topology

app = create_celery_app(load_settings())


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
    from graphrelay.sweeper_service import sweep as sweep_once

    asyncio.run(sweep_once(load_settings(), once=True))
