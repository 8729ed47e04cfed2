"""Background tools as Celery tasks: the worker's end of a delivery.

Each background tool defined in the process becomes a task named `graphrelay.tools.NAME`. The
task turns Celery's message into a `Delivery` and hands it, with the worker's services, to the
bridge (`bridge/worker.py`), which holds the rules; a poison call is rejected without requeue,
so RabbitMQ dead-letters it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from celery import Celery, Task
from celery.exceptions import Reject

from graphrelay.bridge.tool import BackgroundTool, CoroutineRunner
from graphrelay.bridge.worker import Delivery, WorkerServices, execute_delivery
from graphrelay.errors import PoisonCallError

TASK_PREFIX = "graphrelay.tools."
HARD_LIMIT_MARGIN = 30.0  # seconds past a tool's timeout before its process is killed


def coroutine_runner() -> CoroutineRunner:
    """How this worker process runs an `async def` tool body to its end.

    On the prefork pool, `asyncio.run` in the process. Under gevent's monkey-patching (the io
    pool), `asyncio.run` on an OS thread of gevent's thread pool: asyncio keeps one running
    loop per OS thread, so two greenlets' loops must not share one, and the calling greenlet
    waits without blocking the others.
    """
    try:
        from gevent import monkey
    except ImportError:  # gevent is a dependency, but the cpu pool needs none of it
        return asyncio.run
    if not monkey.is_module_patched("threading"):
        return asyncio.run
    import gevent

    def run_on_os_thread(coroutine: Coroutine[Any, Any, Any]) -> Any:
        return gevent.get_hub().threadpool.apply(asyncio.run, (coroutine,))

    return run_on_os_thread


def task_name(tool_name: str) -> str:
    """The Celery task name of a background tool."""
    return f"{TASK_PREFIX}{tool_name}"


def register_tools(
    app: Celery, tools: Iterable[BackgroundTool], services: Callable[[], WorkerServices]
) -> None:
    """Register a task for each tool on `app`; `services` gives the worker's services when a
    task runs (built once per worker process by the runtime)."""
    for tool in tools:
        _register(app, tool, services)


def _register(app: Celery, tool: BackgroundTool, services: Callable[[], WorkerServices]) -> None:
    def run_on_worker(
        task: Task, thread_id: str, args: dict[str, Any], callback_url: str | None = None
    ) -> None:
        delivery = Delivery(
            task_id=str(task.request.id),
            thread_id=thread_id,
            redelivered=bool((task.request.delivery_info or {}).get("redelivered")),
        )
        try:
            execute_delivery(tool, delivery, args, callback_url, services())
        except PoisonCallError as exc:
            raise Reject(str(exc), requeue=False) from exc

    hard_limit = None if tool.timeout is None else tool.timeout + HARD_LIMIT_MARGIN
    app.task(
        name=task_name(tool.name),
        bind=True,
        # Only an idempotent body may run again after a worker dies mid-task.
        acks_late=tool.idempotent,
        reject_on_worker_lost=tool.idempotent,
        soft_time_limit=tool.timeout,
        time_limit=hard_limit,
        ignore_result=True,
    )(run_on_worker)
