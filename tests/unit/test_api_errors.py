"""Every bad request gets a 4xx with a JSON body, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graphrelay.bridge.calls import CallRecord
from graphrelay.bridge.messages import signed_headers
from graphrelay.bridge.notifier import WebhookNotifier
from graphrelay.config import Settings
from graphrelay.errors import CallbackRejectedError
from graphrelay.runtime.api import create_app
from tests.support.fakes import RecordingDispatcher


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, RecordingDispatcher())) as test_client:
        yield test_client


def _signed(settings: Settings, body: str) -> dict[str, str]:
    return signed_headers(settings.signing_secret, "msg_test", body)


def _callback(client: TestClient, settings: Settings, body: str) -> tuple[int, object]:
    response = client.post(
        "/internal/tasks/callback", content=body, headers=_signed(settings, body)
    )
    return response.status_code, response.json()


def test_callback_without_signature_headers_is_401(client: TestClient) -> None:
    response = client.post("/internal/tasks/callback", json={"task_id": "x"})
    assert response.status_code == 401
    assert "Missing required headers" in response.json()["detail"]


def test_callback_body_that_is_not_json_is_400(client: TestClient, settings: Settings) -> None:
    status, body = _callback(client, settings, "{not json")
    assert status == 400
    assert "not JSON" in body["detail"]  # type: ignore[index]


@pytest.mark.parametrize(
    "payload",
    [
        {"task_id": "gr-1"},
        {"task_id": "gr-1", "thread_id": "t", "status": "maybe"},
        {"task_id": "", "thread_id": "t", "status": "completed"},
        {"task_id": "gr-1", "thread_id": "t", "status": "completed", "surprise": 1},
        [1, 2, 3],
    ],
)
def test_callback_body_of_the_wrong_shape_is_422(
    client: TestClient, settings: Settings, payload: object
) -> None:
    status, body = _callback(client, settings, json.dumps(payload))
    assert status == 422
    assert isinstance(body["detail"], list)  # type: ignore[index]


def test_callback_for_an_unknown_task_is_404(client: TestClient, settings: Settings) -> None:
    payload = {"task_id": "gr-nope", "thread_id": "t", "status": "completed", "result": 1}
    status, body = _callback(client, settings, json.dumps(payload))
    assert status == 404
    assert "gr-nope" in body["detail"]  # type: ignore[index]


def test_oversized_callback_is_413(client: TestClient, settings: Settings) -> None:
    payload = {
        "task_id": "gr-1",
        "thread_id": "t",
        "status": "completed",
        "result": "x" * 11_000_000,
    }
    status, _ = _callback(client, settings, json.dumps(payload))
    assert status == 413


def test_unknown_thread_is_404(client: TestClient) -> None:
    assert client.get("/threads/nope/state").status_code == 404
    assert client.get("/threads/nope").status_code == 404
    response = client.post("/threads/nope/runs", json={"assistant_id": "agent", "input": {}})
    assert response.status_code == 404
    assert response.json() == {"detail": "thread nope not found"}


def test_thread_ids_are_unique_unless_asked_otherwise(client: TestClient) -> None:
    assert client.post("/threads", json={"thread_id": "t1"}).status_code == 200
    assert client.post("/threads", json={"thread_id": "t1"}).status_code == 409
    again = client.post("/threads", json={"thread_id": "t1", "if_exists": "do_nothing"})
    assert again.status_code == 200


def test_bad_run_requests_are_refused(client: TestClient) -> None:
    client.post("/threads", json={"thread_id": "t1"})
    unknown = client.post("/threads/t1/runs", json={"assistant_id": "nope", "input": {}})
    both = client.post(
        "/threads/t1/runs",
        json={"assistant_id": "agent", "input": {}, "command": {"resume": 1}},
    )
    missing = client.post("/threads/t1/runs", json={"input": {}})

    assert unknown.status_code == 404
    assert both.status_code == 422
    assert missing.status_code == 422
    assert client.get("/threads/t1/runs").json() == []


def test_new_thread_has_an_empty_state(client: TestClient) -> None:
    thread = client.post("/threads", json={"metadata": {"user": "ada"}}).json()
    state = client.get(f"/threads/{thread['thread_id']}/state").json()
    assert thread["metadata"] == {"user": "ada"}
    assert thread["status"] == "idle"
    assert state["values"] == {} and state["interrupts"] == []


def test_notifier_stops_on_a_refusal_it_cannot_fix(client: TestClient, settings: Settings) -> None:
    # A worker posting with the wrong secret gets 401 once, not ten retries.
    notifier = WebhookNotifier("whsec_" + "A" * 43, max_attempts=10, initial_backoff=0.01)
    notifier._client = client  # type: ignore[assignment]
    record = CallRecord(task_id="gr-1", thread_id="t", tool="x", queue="io", status="completed")
    with pytest.raises(CallbackRejectedError, match="401"):
        notifier.notify(record, "/internal/tasks/callback")


def test_readyz_reports_what_is_down(tmp_path: Path) -> None:
    from graphrelay.testing.processes import free_port

    broken = Settings(data_dir=tmp_path, broker_url=f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    with TestClient(create_app(broken, RecordingDispatcher())) as test_client:
        response = test_client.get("/readyz")
    assert response.status_code == 503
    assert "cannot reach" in response.json()["problems"]["broker"]


def test_readyz_on_a_healthy_embedded_api(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}
