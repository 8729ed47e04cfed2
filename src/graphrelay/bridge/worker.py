"""The worker's side of the bridge: run one delivery of a background call, store its outcome,
then call the API back.

Whatever carries the message (Celery in `backends/celery/tasks.py`) builds a `Delivery` and
calls `execute_delivery` with the worker's services; the rules live here, so they are tested in
process with fakes:

- store-then-callback: the outcome is in the ledger before the API hears of it;
- duplicates: a second message for a call that a worker already started, and that the broker
  did not redeliver, is a duplicate publish (the API or the sweeper sent it again): it runs
  nothing;
- poison: a call delivered more than `max_deliveries` times (its worker died each time) fails
  with a readable error, the caller is told, and `PoisonCallError` sends the message to the
  dead-letter queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphrelay.bridge.calls import CallOutcome, CallRecord, CallStatus
from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.ports import Notifier
from graphrelay.errors import PoisonCallError
from graphrelay.testing.crash import crash_point

if TYPE_CHECKING:
    from graphrelay.bridge.tool import BackgroundTool, CoroutineRunner

log = logging.getLogger(__name__)

POISON_PREFIX = "poison task:"


@dataclass
class WorkerServices:
    """The adapters a worker process needs to run a call and report it; `run_coroutine`
    runs an `async def` body to its end (the pool decides how: `backends/celery/tasks.py`)."""

    ledger: Ledger
    notifier: Notifier
    max_deliveries: int = 3
    run_coroutine: CoroutineRunner = asyncio.run


@dataclass(frozen=True)
class Delivery:
    """One message of a background call, as a worker received it."""

    task_id: str
    thread_id: str
    # RabbitMQ sets this when it hands out a message again because the consumer that had it
    # went away without acking: the earlier attempt died.
    redelivered: bool = False


@dataclass(frozen=True)
class RunningCall:
    """The call whose body runs in this context, for `report_progress`."""

    task_id: str
    thread_id: str
    callback_url: str | None
    notifier: Notifier


_running: ContextVar[RunningCall | None] = ContextVar("graphrelay_running_call", default=None)


def running_call() -> RunningCall | None:
    """The call whose body runs here, or None outside a background call."""
    return _running.get()


@contextlib.contextmanager
def _running_as(call: RunningCall) -> Iterator[None]:
    token = _running.set(call)
    try:
        yield
    finally:
        _running.reset(token)


def execute_delivery(
    tool: BackgroundTool,
    delivery: Delivery,
    args: dict[str, Any],
    callback_url: str | None,
    services: WorkerServices,
) -> None:
    """Run one delivery of a background call: store the outcome, then call back.

    Raises `PoisonCallError` for a poison call (after storing its error and calling back).
    """
    ledger = services.ledger
    record = ledger.get(delivery.task_id) or ledger.intend(
        CallRecord(
            task_id=delivery.task_id,
            thread_id=delivery.thread_id,
            tool=tool.name,
            queue=tool.queue,
            args=args,
            status=CallStatus.DISPATCHED,
        )
    )
    if _closed(delivery.task_id, record):
        return
    if not record.finished:
        attempts = ledger.start_attempt(delivery.task_id, first_only=not delivery.redelivered)
        if not attempts:
            log.warning("duplicate message for %s: another delivery runs it", delivery.task_id)
            return
        running = RunningCall(delivery.task_id, delivery.thread_id, callback_url,
                              services.notifier)  # fmt: skip
        after = _attempt(tool, services, running, attempts, args)
        if after is None or _closed(delivery.task_id, after):
            return
        record = after
    if callback_url:
        services.notifier.notify(record, callback_url)
    if record.attempts > services.max_deliveries:
        raise PoisonCallError(record.error)


def _attempt(
    tool: BackgroundTool,
    services: WorkerServices,
    running: RunningCall,
    attempts: int,
    args: dict[str, Any],
) -> CallRecord | None:
    """Run the body unless the call is poison, and store the outcome; the record then (None
    if it is gone)."""
    task_id = running.task_id
    if attempts > services.max_deliveries:
        outcome = CallOutcome(
            task_id=task_id,
            error=f"{POISON_PREFIX} {tool.name} was delivered {attempts} times and its worker "
            f"died each time; it was moved to the dead-letter queue and will not run again",
        )
    else:
        with _running_as(running):
            outcome = tool.execute(args, services.run_coroutine)
    status = CallStatus.FAILED if outcome.failed else CallStatus.COMPLETED
    services.ledger.finish(task_id, status, outcome.result, outcome.error)
    crash_point("worker_after_result")
    record = services.ledger.get(task_id)
    if record is None:  # its thread was deleted or expired meanwhile: nobody waits for it
        log.info("call %s is gone from the ledger: nothing to report", task_id)
    return record


def _closed(task_id: str, record: CallRecord) -> bool:
    """True (and logged) when the call was closed (say, its thread deleted): nothing runs it,
    and nobody is told."""
    if record.status != CallStatus.ABANDONED:
        return False
    log.info("call %s is closed (%s): nothing to run or report", task_id, record.reason)
    return True
