"""The Celery app of every graphrelay process, on the queues of `queues.py`.

Messages are persistent and published with confirms.

The embedded profile swaps RabbitMQ for kombu's file-system transport (with atomic message
files, see `filesystem_transport`), polled every `poll_interval` seconds, and keeps Celery
results in files.
"""

from __future__ import annotations

import importlib

from celery import Celery

from graphrelay.backends.celery import filesystem_transport  # noqa: F401 - registers the transport
from graphrelay.backends.celery.queues import (
    DEFAULT_QUEUE,
    EXCHANGE,
    SWEEP_QUEUE,
    all_queues,
)
from graphrelay.backends.urls import broker_kind
from graphrelay.config import Settings

SWEEP_TASK = "graphrelay.sweep"


def create_celery_app(settings: Settings) -> Celery:
    """A Celery app wired to the profile's broker and result backend."""
    app = Celery("graphrelay", broker=settings.broker_url, backend=settings.result_backend)
    app.conf.update(
        task_queues=all_queues(settings),
        task_default_exchange=EXCHANGE.name,
        task_default_queue=DEFAULT_QUEUE,
        task_default_routing_key=DEFAULT_QUEUE,
        task_create_missing_queues=False,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_track_started=True,
        broker_connection_retry_on_startup=True,
        worker_send_task_events=False,
        beat_schedule={
            "graphrelay-sweeper": {
                "task": SWEEP_TASK,
                "schedule": settings.sweeper_period_seconds,
                # A round that waited a whole period in the queue is stale: the next one comes.
                "options": {"queue": SWEEP_QUEUE, "expires": settings.sweeper_period_seconds},
            }
        },
    )
    kind = broker_kind(settings.broker_url)
    if kind == "amqp":
        # Messages are persistent by default; confirms make a publish return only once
        # RabbitMQ has taken the message, so a dispatch that returned is never lost.
        app.conf.broker_transport_options = {"confirm_publish": True}
    if kind == "filesystem":
        app.conf.broker_transport_options = _filesystem_transport(settings)
        settings.data_dir.joinpath("celery-results").mkdir(parents=True, exist_ok=True)
    _import_tool_modules(settings)
    return app


def declare_topology(app: Celery) -> None:
    """Declare the exchanges, queues and bindings, the dead-letter queue included.

    Celery declares only the queues it publishes to or consumes from; without this nobody
    declares `dead_letter`, and the broker would drop what the work queues dead-letter.
    """
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in app.conf.task_queues:
            queue(channel).declare()


def _filesystem_transport(settings: Settings) -> dict[str, object]:
    folder = settings.broker_folder
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        "polling_interval": settings.poll_interval,
    }


def _import_tool_modules(settings: Settings) -> None:
    """Importing a tool module registers its background tools' Celery tasks."""
    for module in settings.tool_modules:
        importlib.import_module(module)
