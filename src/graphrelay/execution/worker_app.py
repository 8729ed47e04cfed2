"""The Celery app a worker process loads (`celery -A graphrelay.execution.worker_app`)."""

from typing import Any

from celery.signals import worker_init

from graphrelay.config import load_settings
from graphrelay.execution.celery_app import create_celery_app, declare_topology

app = create_celery_app(load_settings())


def _declare_topology(**_: Any) -> None:
    declare_topology(app)


worker_init.connect(_declare_topology, weak=False)
