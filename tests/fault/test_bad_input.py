"""Issue 5, must-show 4: bad input at every boundary of a running deployment gets a clear error,
never a 5xx, and loses nothing: a thread suspended meanwhile still completes with its one
result."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError

from graphrelay.bridge.calls import CallStatus
from graphrelay.bridge.messages import PROGRESS_PATH, signed_headers
from tests.support.stack import Stack, final_answer, tool_messages


def _post_signed(stack: Stack, path: str, raw: bytes | str) -> httpx.Response:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    headers = signed_headers(stack.env["GRAPHRELAY_WEBHOOK_SECRET"], f"msg_{uuid.uuid4()}", text)
    return httpx.post(f"{stack.base_url}{path}", content=raw, headers=headers, timeout=30)


def _assert_clear_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"]


@pytest.mark.parametrize("path", ["/internal/tasks/callback", PROGRESS_PATH])
def test_bad_worker_posts_are_refused_and_the_waiting_thread_survives(
    production_stack: Stack, path: str
) -> None:
    stack = production_stack
    thread_id = stack.start_thread("slow call")
    [pending] = stack.pending(thread_id)
    task_id = pending["task_id"]
    progress = {"task_id": task_id, "thread_id": thread_id, "fraction": 0.5, "message": "x"}

    _assert_clear_error(_post_signed(stack, path, "{not json"), 400)
    _assert_clear_error(_post_signed(stack, path, json.dumps({"task_id": task_id})), 422)
    _assert_clear_error(_post_signed(stack, path, b"x" * (10 * 1024 * 1024 + 1)), 413)
    unknown = {**progress, "task_id": "gr-unknown"}
    if path.endswith("callback"):
        unknown = {"task_id": "gr-unknown", "thread_id": thread_id, "status": "completed"}
    _assert_clear_error(_post_signed(stack, path, json.dumps(unknown)), 404)
    wrong_thread = {**unknown, "task_id": task_id, "thread_id": "not-this-thread"}
    _assert_clear_error(_post_signed(stack, path, json.dumps(wrong_thread)), 404)
    unsigned = httpx.post(f"{stack.base_url}{path}", json=unknown, timeout=10)
    _assert_clear_error(unsigned, 401)

    state = stack.wait_done(thread_id, timeout=90)
    assert final_answer(state) == "answer: echo: slow"
    assert len(tool_messages(state)) == 1
    [record] = stack.records(thread_id)
    assert record.status == CallStatus.APPLIED and record.attempts == 1


def test_arguments_that_fail_validation_become_a_tool_error_and_dispatch_nothing(
    production_stack: Stack,
) -> None:
    thread_id = production_stack.start_thread("bad arguments")

    state = production_stack.wait_done(thread_id)

    [message] = tool_messages(state)
    assert message["status"] == "error"
    assert "seconds" in message["content"] and "valid number" in message["content"]
    assert final_answer(state).startswith("told: ")
    assert production_stack.records(thread_id) == []


def test_a_thread_that_does_not_exist_is_404_everywhere(production_stack: Stack) -> None:
    client = production_stack.sdk()
    missing = str(uuid.uuid4())
    calls = [
        lambda: client.threads.get(missing),
        lambda: client.threads.get_state(missing),
        lambda: client.threads.get_history(missing),
        lambda: client.runs.create(missing, "agent", input={"messages": []}),
        lambda: client.runs.wait(missing, "agent", input={"messages": []}),
        lambda: client.runs.list(missing),
    ]
    for call in calls:
        # The SDK raises its NotFoundError, or httpx's error on the paths it reads raw.
        with pytest.raises((NotFoundError, httpx.HTTPStatusError)) as error:
            call()
        assert error.value.response.status_code == 404
        assert f"thread {missing} not found" in error.value.response.text
