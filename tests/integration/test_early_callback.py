"""Must-show 4: a callback that arrives before the interrupt is checkpointed still completes
the run. The API runs in this process so its dispatcher can hold the tool body until the real
worker's real callback has been accepted; only then does the body go on to `interrupt()`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from graphrelay.backends.celery.app import create_celery_app
from graphrelay.backends.celery.dispatcher import CeleryDispatcher
from graphrelay.bridge.calls import CallRecord, CallStatus
from graphrelay.bridge.ports import Dispatcher
from graphrelay.runtime.api import create_app
from graphrelay.server.executor import RunExecutor
from tests.support.stack import Stack, final_answer, stack_env


class HoldUntilCallback:
    """Publishes for real, then waits until the API has accepted the worker's callback."""

    def __init__(self, inner: Dispatcher, accepted: threading.Event) -> None:
        self.inner = inner
        self.accepted = accepted

    def dispatch(self, record: CallRecord, callback_url: str | None) -> None:
        self.inner.dispatch(record, callback_url)
        assert self.accepted.wait(30), "the worker never called back"

    def revoke(self, task_id: str) -> None:
        self.inner.revoke(task_id)


@pytest.fixture
def early_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    stack = Stack(stack_env(tmp_path, GRAPHRELAY_PROFILE="embedded"), tmp_path)
    accepted = threading.Event()
    wake = RunExecutor.wake

    def wake_and_tell(self: RunExecutor, thread_id: str) -> None:
        accepted.set()
        wake(self, thread_id)

    monkeypatch.setattr(RunExecutor, "wake", wake_and_tell)
    settings = stack.settings
    dispatcher = HoldUntilCallback(CeleryDispatcher(create_celery_app(settings)), accepted)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, dispatcher),
            host="127.0.0.1",
            port=settings.api_port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        stack.start("io")
        stack.wait_for("the in-process API", lambda: server.started, timeout=30)
        yield stack
    finally:
        stack.stop()
        server.should_exit = True
        thread.join(30)


def test_callback_before_interrupt_checkpoint_still_completes(early_stack: Stack) -> None:
    thread_id = early_stack.start_thread("hello early")

    state = early_stack.wait_done(thread_id)

    assert final_answer(state) == "answer: echo: hello"
    [record] = early_stack.records(thread_id)
    assert record.status == CallStatus.APPLIED
    assert record.attempts == 1
    first_run, resume_run = reversed(early_stack.sdk().runs.list(thread_id))
    # The run itself found the stored outcome right after it stopped on the interrupt, and
    # resumed before it finished: the re-check, not the callback's own wake-up, applied it.
    assert resume_run["metadata"]["task_ids"] == [record.task_id]
    assert resume_run["created_at"] < first_run["updated_at"]
