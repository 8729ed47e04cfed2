"""Progress from inside a background tool, shown to clients streaming the thread.

    from graphrelay.bridge.progress import report_progress

    @background_tool(queue="cpu")
    def index_documents(path: str) -> dict:
        for n, file in enumerate(files):
            report_progress(n / len(files), f"read {file}")

The worker POSTs each report, signed like the task callback, to the API's
`/internal/tasks/progress`; the API streams it as a `custom` event on the thread. Progress is
best effort: a report that cannot be delivered is logged and dropped, never raised into the
tool (the result is what must not be lost, and it travels by the callback).
"""

from __future__ import annotations

import logging
import uuid
from functools import cache

import httpx
from celery import current_task
from pydantic import BaseModel, Field

from graphrelay.bridge.webhooks import signed_headers
from graphrelay.config import load_settings

log = logging.getLogger(__name__)

PROGRESS_PATH = "/internal/tasks/progress"


class TaskProgress(BaseModel):
    """The body of a progress report."""

    model_config = {"extra": "forbid"}

    task_id: str = Field(min_length=1, max_length=200)
    thread_id: str = Field(min_length=1, max_length=200)
    fraction: float = Field(ge=0.0, le=1.0)
    message: str = Field(default="", max_length=2000)


def progress_url(callback_url: str) -> str:
    """The progress endpoint of the API that `callback_url` belongs to."""
    return callback_url.split("/internal/", 1)[0] + PROGRESS_PATH


def report_progress(fraction: float, message: str = "") -> None:
    """Report how far the running background tool is (0.0 to 1.0); outside a task, no-op."""
    request = getattr(current_task, "request", None)
    kwargs = getattr(request, "kwargs", None) or {}
    callback_url, thread_id = kwargs.get("callback_url"), kwargs.get("thread_id")
    if not callback_url or not thread_id or request is None:
        return
    report = TaskProgress(
        task_id=str(request.id),
        thread_id=str(thread_id),
        fraction=min(max(fraction, 0.0), 1.0),
        message=message[:2000],
    )
    body = report.model_dump_json()
    headers = signed_headers(_secret(), f"progress_{uuid.uuid4().hex}", body)
    try:
        httpx.post(progress_url(callback_url), content=body, headers=headers, timeout=2)
    except httpx.HTTPError as exc:
        log.warning("progress report for %s dropped: %s", report.task_id, exc)


@cache
def _secret() -> str:
    return load_settings().signing_secret
