"""API keys and tenants: no key is 401; another tenant's ids are 404 on every endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graphrelay.config import Settings
from graphrelay.runtime.api import create_app
from tests.support.fakes import RecordingDispatcher

KEYS = {"key-a": "tenant-a", "key-b": "tenant-b"}
A, B = {"x-api-key": "key-a"}, {"x-api-key": "key-b"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, api_keys=KEYS)
    with TestClient(create_app(settings, RecordingDispatcher())) as test_client:
        yield test_client


@pytest.fixture
def owned(client: TestClient) -> tuple[str, str, str]:
    """Tenant A's thread, run and checkpoint ids."""
    thread_id = client.post("/threads", json={"metadata": {"owner": "a"}}, headers=A).json()[
        "thread_id"
    ]
    question = {"messages": [{"role": "user", "content": "index please"}]}
    run = client.post(f"/threads/{thread_id}/runs/wait",
                      json={"assistant_id": "agent", "input": question}, headers=A)  # fmt: skip
    assert run.status_code == 200, run.text
    run_id = client.get(f"/threads/{thread_id}/runs", headers=A).json()[0]["run_id"]
    checkpoint_id = client.get(f"/threads/{thread_id}/state", headers=A).json()["checkpoint"][
        "checkpoint_id"
    ]
    return thread_id, run_id, checkpoint_id


def _endpoints(t: str, r: str, c: str) -> list[tuple[str, str, object]]:
    run_body = {"assistant_id": "agent", "command": {"resume": 1}}
    return [
        ("GET", f"/threads/{t}", None),
        ("PATCH", f"/threads/{t}", {"metadata": {"x": 1}}),
        ("DELETE", f"/threads/{t}", None),
        ("POST", f"/threads/{t}/copy", None),
        ("GET", f"/threads/{t}/state", None),
        ("GET", f"/threads/{t}/state/{c}", None),
        ("POST", f"/threads/{t}/state/checkpoint", {"checkpoint": {"checkpoint_id": c}}),
        ("POST", f"/threads/{t}/state", {"values": {"messages": []}}),
        ("POST", f"/threads/{t}/history", {"limit": 5}),
        ("POST", f"/threads/{t}/runs", run_body),
        ("POST", f"/threads/{t}/runs/wait", run_body),
        ("POST", f"/threads/{t}/runs/stream", run_body),
        ("GET", f"/threads/{t}/runs", None),
        ("GET", f"/threads/{t}/runs/{r}", None),
        ("GET", f"/threads/{t}/runs/{r}/join", None),
        ("GET", f"/threads/{t}/runs/{r}/stream", None),
        ("GET", f"/threads/{t}/stream", None),
        ("POST", f"/threads/{t}/runs/{r}/cancel", None),
    ]


def test_another_tenants_ids_answer_404_everywhere(
    client: TestClient, owned: tuple[str, str, str]
) -> None:
    for method, path, body in _endpoints(*owned):
        response = client.request(method, path, json=body, headers=B)
        assert response.status_code == 404, (method, path, response.text)
        assert "not found" in response.json()["detail"]
    assert client.post("/threads/search", json={}, headers=B).json() == []
    # Tenant A still sees everything untouched.
    assert client.get(f"/threads/{owned[0]}", headers=A).json()["metadata"] == {"owner": "a"}


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}])
def test_no_or_unknown_key_answers_401(
    client: TestClient, owned: tuple[str, str, str], headers: dict[str, str]
) -> None:
    endpoints = [
        *_endpoints(*owned),
        ("POST", "/threads", {}),
        ("POST", "/threads/search", {}),
        ("POST", "/assistants/search", {}),
        ("GET", "/assistants/agent", None),
    ]
    for method, path, body in endpoints:
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (method, path)
        assert "x-api-key" in response.json()["detail"]
    assert client.get("/healthz").status_code == 200
