"""Publishes background calls to Celery with the idempotency key as task id."""

from __future__ import annotations

from celery import Celery

from graphrelay.backends.celery.tasks import task_name
from graphrelay.bridge.calls import CallRecord


class CeleryDispatcher:
    """Dispatcher on a Celery app (RabbitMQ in production, files when embedded)."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def dispatch(self, record: CallRecord, callback_url: str | None) -> None:
        """Publish `record` to its queue; a second publish of the same key runs nothing twice."""
        self._app.send_task(
            task_name(record.tool),
            kwargs={
                "thread_id": record.thread_id,
                "args": record.args,
                "callback_url": None if record.fire_and_forget else callback_url,
            },
            task_id=record.task_id,
            queue=record.queue,
            routing_key=record.queue,
            retry=True,
            # Outcomes come back through the ledger and the callback; without this, Celery
            # would subscribe to each task's result channel in the result backend.
            ignore_result=True,
        )

    def revoke(self, task_id: str) -> None:
        """Drop the call wherever it waits; a prefork worker running it is stopped too."""
        # gevent workers cannot stop a running greenlet; its late outcome is ignored, since
        # the ledger keeps the first one (the timeout).
        self._app.control.revoke(task_id, terminate=True, signal="SIGKILL")
