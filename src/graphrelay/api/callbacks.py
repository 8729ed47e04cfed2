"""What workers post to the API: finished background calls, and progress along the way.

`POST /internal/tasks/callback` and `POST /internal/tasks/progress` are signed per Standard
Webhooks; the signature is checked over the raw body before anything is parsed. Recording an
outcome is first-write-wins and resuming happens under the thread lock, so a duplicate
callback changes nothing; it still answers 202 so the worker stops retrying. A call that was
closed (its thread deleted, or its repair parked) answers 410 Gone with the reason: nothing
will take its outcome, and the worker stops too.
"""

from __future__ import annotations

import json
from typing import TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from graphrelay.api.deps import engine_of
from graphrelay.api.errors import documented
from graphrelay.bridge.calls import CallRecord, CallStatus
from graphrelay.bridge.messages import (
    CALLBACK_PATH,
    PROGRESS_PATH,
    CallbackMessage,
    ProgressMessage,
    verify,
)
from graphrelay.errors import InvalidSignatureError
from graphrelay.server.engine import Engine
from graphrelay.server.streaming import thread_channel
from graphrelay.testing.crash import crash_point

router = APIRouter(tags=["internal"], responses=documented(400, 401, 404, 410, 413))

MAX_CALLBACK_BYTES = 10 * 1024 * 1024
Body = TypeVar("Body", bound=BaseModel)


@router.post(CALLBACK_PATH, status_code=202)
async def task_callback(request: Request) -> JSONResponse:
    """Verify, record and apply a worker's outcome."""
    engine = engine_of(request)
    callback = _parse(await _verified_body(request), CallbackMessage)
    await _record_on(engine, callback.task_id, callback.thread_id)
    status = CallStatus.FAILED if callback.status == "failed" else CallStatus.COMPLETED
    await engine.ledger.afinish(callback.task_id, status, callback.result, callback.error)
    crash_point("after_callback_accepted")
    engine.executor.wake(callback.thread_id)
    return JSONResponse({"accepted": True, "task_id": callback.task_id}, status_code=202)


@router.post(PROGRESS_PATH, status_code=202)
async def task_progress(request: Request) -> JSONResponse:
    """Verify a worker's progress report and stream it on the thread as a `custom` event."""
    engine = engine_of(request)
    report = _parse(await _verified_body(request), ProgressMessage)
    record = await _record_on(engine, report.task_id, report.thread_id)
    event = {"type": "background_task_progress", "tool": record.tool, **report.model_dump()}
    engine.executor.events.publish(thread_channel(report.thread_id), "custom", event)
    return JSONResponse({"accepted": True}, status_code=202)


async def _record_on(engine: Engine, task_id: str, thread_id: str) -> CallRecord:
    """The ledger record of a background call on that thread; 404 if there is none, 410 if
    it was closed."""
    record = await engine.ledger.aget(task_id)
    if record is None or record.thread_id != thread_id:
        raise HTTPException(404, f"no background task {task_id} on that thread")
    if record.status == CallStatus.ABANDONED:
        raise HTTPException(410, f"background task {task_id} was closed: {record.reason}")
    return record


async def _verified_body(request: Request) -> bytes:
    engine = engine_of(request)
    body = await request.body()
    if len(body) > MAX_CALLBACK_BYTES:
        raise HTTPException(413, f"callback body over {MAX_CALLBACK_BYTES} bytes")
    try:
        verify(engine.settings.signing_secret, body, dict(request.headers))
    except InvalidSignatureError as exc:
        raise HTTPException(401, f"invalid webhook signature: {exc}") from exc
    return body


def _parse(body: bytes, model: type[Body]) -> Body:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise HTTPException(400, f"callback body is not JSON: {exc}") from exc
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise HTTPException(422, json.loads(exc.json(include_url=False))) from exc
