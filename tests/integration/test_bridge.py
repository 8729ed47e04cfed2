"""The bridge end to end on real processes, in both profiles (must-shows 1, 2, 3, 5, 6, 7)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from graphrelay.bridge.calls import CallStatus
from tests.support.stack import Stack, final_answer, tool_messages


def _resume_runs(stack: Stack, thread_id: str) -> list[dict[str, object]]:
    runs = stack.sdk().runs.list(thread_id)
    return [run for run in runs if run["metadata"].get("resumed_by") == "background_tasks"]


def test_one_background_call_end_to_end(stack: Stack) -> None:
    thread_id = stack.start_thread("hello there")
    [pending] = stack.pending(thread_id)
    assert pending["type"] == "background_task_pending"
    assert (pending["tool"], pending["queue"]) == ("echo_later", "io")

    state = stack.wait_done(thread_id)

    assert final_answer(state) == "answer: echo: hello"
    [record] = stack.records(thread_id)
    assert record.task_id == pending["task_id"]
    assert record.status == CallStatus.APPLIED
    assert record.result == "echo: hello"


def test_two_pending_calls_each_resumed_by_its_own_callback(stack: Stack) -> None:
    thread_id = stack.start_thread("make two calls")
    both = stack.pending(thread_id, count=2)
    assert {value["args"]["text"] for value in both} == {"first", "second"}

    state = stack.wait_done(thread_id)

    assert final_answer(state) == "both done: echo: first\necho: second"
    by_text = {record.args["text"]: record for record in stack.records(thread_id)}
    resumes = _resume_runs(stack, thread_id)
    # The fast call resumes alone while the slow one is still pending, then the slow one.
    assert [run["metadata"]["task_ids"] for run in reversed(resumes)] == [
        [by_text["first"].task_id],
        [by_text["second"].task_id],
    ]


def test_rerun_on_resume_does_not_dispatch_again(stack: Stack) -> None:
    # Resuming the first call re-runs the second call's tool body from its start.
    thread_id = stack.start_thread("make two calls")
    stack.wait_done(thread_id)

    records = stack.records(thread_id)
    assert len(records) == 2
    assert [record.attempts for record in records] == [1, 1]
    assert all(record.status == CallStatus.APPLIED for record in records)


def test_ten_identical_callbacks_apply_the_result_once(stack: Stack) -> None:
    thread_id = stack.start_thread("a slow call please")
    [pending] = stack.pending(thread_id)
    body = {
        "task_id": pending["task_id"],
        "thread_id": thread_id,
        "status": "completed",
        "result": "echo: slow",
    }

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: stack.post_callback(body), range(10)))

    assert [response.status_code for response in responses] == [202] * 10
    state = stack.wait_done(thread_id)
    assert final_answer(state) == "answer: echo: slow"
    assert len(tool_messages(state)) == 1
    assert len(_resume_runs(stack, thread_id)) == 1
    # The worker's own callback comes later and changes nothing either.
    stack.wait_for("the worker to finish", lambda: stack.records(thread_id)[0].attempts == 1)
    time.sleep(3.5)
    assert len(tool_messages(stack.sdk().threads.get_state(thread_id))) == 1
    assert len(_resume_runs(stack, thread_id)) == 1


def test_forged_or_stale_callbacks_are_refused_and_change_nothing(stack: Stack) -> None:
    from graphrelay.config import new_webhook_secret

    thread_id = stack.start_thread("a slow call please")
    [pending] = stack.pending(thread_id)
    before_state = stack.sdk().threads.get_state(thread_id)
    [before_record] = stack.records(thread_id)
    body = {"task_id": pending["task_id"], "thread_id": thread_id,
            "status": "completed", "result": "forged"}  # fmt: skip

    forged = stack.post_callback(body, secret=new_webhook_secret())
    stale = stack.post_callback(body, now=time.time() - 600)

    for response in (forged, stale):
        assert response.status_code == 401
        assert "invalid webhook signature" in response.json()["detail"]
    [after_record] = stack.records(thread_id)
    assert after_record.status == before_record.status == CallStatus.DISPATCHED
    assert after_record.result is None
    after_state = stack.sdk().threads.get_state(thread_id)
    assert after_state["checkpoint"] == before_state["checkpoint"]
    assert after_state["interrupts"] == before_state["interrupts"]
    assert final_answer(stack.wait_done(thread_id)) == "answer: echo: slow"


def test_a_tool_that_raises_gives_the_agent_a_readable_error(stack: Stack) -> None:
    thread_id = stack.start_thread("explode please")

    state = stack.wait_done(thread_id)

    failed, recovered = tool_messages(state)
    assert failed["status"] == "error"
    assert "RuntimeError: the disk is on fire" in failed["content"]
    assert recovered["content"] == "echo: after the failure"
    assert final_answer(state).startswith("recovered: explode failed")
    explode_record = next(r for r in stack.records(thread_id) if r.tool == "explode")
    assert explode_record.status == CallStatus.APPLIED
    assert explode_record.error is not None


def test_fetch_url_runs_on_an_io_worker(stack: Stack) -> None:
    thread_id = stack.start_thread("fetch the api description")

    state = stack.wait_done(thread_id)

    [fetched] = tool_messages(state)
    page = json.loads(fetched["content"])
    assert page["status"] == 200
    assert page["content_type"] == "application/json"
    assert '"title":"graphrelay"' in page["text"]
    [record] = stack.records(thread_id)
    assert (record.tool, record.queue, record.attempts) == ("fetch_url", "io", 1)
