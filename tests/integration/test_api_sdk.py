"""The API through the real `langgraph-sdk` clients, sync and async (issue 4, first slice)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from graphrelay.bridge.messages import signed_headers, verify
from tests.support.receiver import receiving
from tests.support.stack import Stack, final_answer, tool_messages

QUESTION = {"messages": [{"role": "user", "content": "hello there"}]}


def test_assistants_are_the_served_graphs(embedded_stack: Stack) -> None:
    client = embedded_stack.sdk()

    [assistant] = client.assistants.search()
    graph = client.assistants.get_graph("agent")
    schemas = client.assistants.get_schemas("agent")

    assert assistant["assistant_id"] == assistant["graph_id"] == "agent"
    assert client.assistants.get("agent")["name"] == "agent"
    assert {node["id"] for node in graph["nodes"]} >= {"model", "tools"}
    assert "messages" in schemas["input_schema"]["properties"]
    with pytest.raises(httpx.HTTPStatusError) as missing:
        client.assistants.get("nope")
    assert missing.value.response.status_code == 404


def test_wait_suspends_then_join_the_resume(embedded_stack: Stack) -> None:
    client = embedded_stack.sdk()
    thread = client.threads.create(metadata={"user": "ada"})
    thread_id = thread["thread_id"]

    waited = client.runs.wait(thread_id, "agent", input=QUESTION)

    [pending] = waited["__interrupt__"]
    assert pending["value"]["type"] == "background_task_pending"
    embedded_stack.wait_for("the resume run", lambda: len(client.runs.list(thread_id)) == 2)
    resume, first = client.runs.list(thread_id)
    assert resume["metadata"]["task_ids"] == [pending["value"]["task_id"]]
    joined = client.runs.join(thread_id, resume["run_id"])
    assert joined["messages"][-1]["content"] == "answer: echo: hello"
    assert client.runs.get(thread_id, first["run_id"])["status"] == "success"


def test_threads_search_update_copy_delete(embedded_stack: Stack) -> None:
    client = embedded_stack.sdk()
    tag = {"suite": "threads-crud"}
    thread_id = client.threads.create(metadata=tag)["thread_id"]
    client.runs.wait(thread_id, "agent", input=QUESTION)
    embedded_stack.wait_done(thread_id)

    client.threads.update(thread_id, metadata={"stage": "done"})
    found = client.threads.search(metadata={**tag, "stage": "done"})
    copy = client.threads.copy(thread_id)
    history = client.threads.get_history(thread_id, limit=50)
    copied_history = client.threads.get_history(copy["thread_id"], limit=50)

    assert [t["thread_id"] for t in found] == [thread_id]
    assert copy["metadata"] == {**tag, "stage": "done"}
    assert [h["values"] for h in copied_history] == [h["values"] for h in history]
    client.threads.delete(thread_id)
    with pytest.raises(httpx.HTTPStatusError) as gone:
        client.threads.get(thread_id)
    assert gone.value.response.status_code == 404
    assert client.threads.get(copy["thread_id"])["values"] == history[0]["values"]


async def test_fork_from_an_earlier_checkpoint_and_run_again(embedded_stack: Stack) -> None:
    client = get_client(url=embedded_stack.base_url, api_key=None)
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "agent", input=QUESTION)
    embedded_stack.wait_done(thread_id)
    history = await client.threads.get_history(thread_id, limit=50)
    # The checkpoint right after the user's question, before the model answered.
    asked = next(h for h in reversed(history) if h["next"] == ["model"])

    await client.threads.update_state(
        thread_id,
        {"messages": [{"role": "user", "content": "make two calls instead"}]},
        checkpoint_id=asked["checkpoint"]["checkpoint_id"],
        as_node="__start__",
    )
    await client.runs.create(thread_id, "agent", input=None)
    state = embedded_stack.wait_done(thread_id)

    assert final_answer(state) == "both done: echo: first\necho: second"
    assert len(tool_messages(state)) == 2
    assert len(await client.threads.get_history(thread_id, limit=100)) > len(history)


def test_cancel_interrupts_a_running_run(stack: Stack) -> None:
    client = stack.sdk()
    thread_id, run_id = stack.blocked_run()

    client.runs.cancel(thread_id, run_id, wait=True)

    assert client.runs.get(thread_id, run_id)["status"] == "interrupted"
    assert client.threads.get(thread_id)["status"] != "busy"
    with pytest.raises(httpx.HTTPStatusError) as again:
        client.runs.cancel(thread_id, run_id)
    assert again.value.response.status_code == 409


def test_rollback_deletes_what_the_run_wrote(production_stack: Stack) -> None:
    client = production_stack.sdk()
    thread_id, run_id = production_stack.blocked_run()

    client.runs.cancel(thread_id, run_id, wait=True, action="rollback")

    assert client.threads.get_history(thread_id) == []
    with pytest.raises(httpx.HTTPStatusError) as gone:
        client.runs.get(thread_id, run_id)
    assert gone.value.response.status_code == 404


def test_rollback_needs_a_saver_that_can_delete_runs(embedded_stack: Stack) -> None:
    client = embedded_stack.sdk()
    thread_id, run_id = embedded_stack.blocked_run()

    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.cancel(thread_id, run_id, action="rollback")

    assert refused.value.response.status_code == 409
    assert "Redis saver" in refused.value.response.json()["detail"]


async def test_stream_shows_the_suspension_then_the_thread_resumes_by_itself(
    embedded_stack: Stack,
) -> None:
    client = get_client(url=embedded_stack.base_url, api_key=None)
    thread_id = (await client.threads.create())["thread_id"]

    parts = [
        part
        async for part in client.runs.stream(
            thread_id, "agent", input=QUESTION,
            stream_mode=["values", "updates", "messages-tuple"],
        )
    ]  # fmt: skip

    events = [part.event for part in parts]
    assert events[0] == "metadata" and events[-1] == "end"
    assert {"values", "updates", "messages"} <= set(events)
    [suspended] = [p.data["__interrupt__"] for p in parts
                   if p.event == "updates" and "__interrupt__" in p.data]  # fmt: skip
    assert suspended[0]["value"]["type"] == "background_task_pending"
    assert parts[-1].data["status"] == "success"
    state = embedded_stack.wait_done(thread_id)
    assert final_answer(state) == "answer: echo: hello"


async def test_a_resumable_stream_is_joined_again_after_the_last_event_seen(
    stack: Stack,
) -> None:
    client = get_client(url=stack.base_url, api_key=None)
    thread_id = (await client.threads.create())["thread_id"]
    streamed = [
        part
        async for part in client.runs.stream(
            thread_id, "agent", input=QUESTION, stream_mode=["values", "updates"],
            stream_resumable=True,
        )
    ]  # fmt: skip
    run_id, kept = streamed[0].data["run_id"], streamed[1:]

    again = client.runs.join_stream(thread_id, run_id, last_event_id=kept[1].id)
    rejoined = [part async for part in again]
    from_start = [p async for p in client.runs.join_stream(thread_id, run_id, last_event_id="-1")]

    assert kept[-1].event == "end" and kept[-1].data["status"] == "success"
    assert all(part.id for part in kept) and len({part.id for part in kept}) == len(kept)
    assert rejoined[0].event == from_start[0].event == "metadata"
    assert rejoined[1:] == kept[2:]
    assert from_start[1:] == kept


async def test_stream_resumption_errors_say_what_to_do(embedded_stack: Stack) -> None:
    client = get_client(url=embedded_stack.base_url, api_key=None)
    thread_id = (await client.threads.create())["thread_id"]
    live = await client.runs.create(thread_id, "agent", input=QUESTION)

    async def refusal(stream: Any) -> tuple[int, str]:
        with pytest.raises(httpx.HTTPStatusError) as refused:
            [part async for part in stream]
        return refused.value.response.status_code, refused.value.response.json()["detail"]

    run_id = live["run_id"]
    not_kept = await refusal(client.runs.join_stream(thread_id, run_id, last_event_id="-1"))
    bad_id = await refusal(client.runs.join_stream(thread_id, run_id, last_event_id="x"))
    on_thread = await refusal(await client.threads.join_stream(thread_id, last_event_id="3"))

    assert not_kept[0] == 409 and "stream_resumable" in not_kept[1]
    assert bad_id[0] == 400 and "not an event id" in bad_id[1]
    assert on_thread[0] == 400 and "live only" in on_thread[1]


def test_unknown_stream_mode_is_422(embedded_stack: Stack) -> None:
    client = embedded_stack.sdk()
    thread_id = client.threads.create()["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as refused:
        list(client.runs.stream(thread_id, "agent", input=QUESTION, stream_mode="telepathy"))
    assert refused.value.response.status_code == 422


def test_multitask_reject_refuses_a_second_run(stack: Stack) -> None:
    client = stack.sdk()
    thread_id, first = stack.blocked_run()

    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.create(thread_id, "agent", input=QUESTION, multitask_strategy="reject")

    assert refused.value.response.status_code == 409
    assert final_answer(stack.wait_done(thread_id)) == "unblocked: unblocked"
    assert client.runs.get(thread_id, first)["status"] == "success"


def test_multitask_enqueue_runs_after_the_active_run(production_stack: Stack) -> None:
    client = production_stack.sdk()
    thread_id, first = production_stack.blocked_run()

    second = client.runs.create(thread_id, "agent", input=QUESTION, multitask_strategy="enqueue")

    assert second["status"] == "pending"
    client.runs.join(thread_id, second["run_id"])
    state = production_stack.wait_done(thread_id)
    assert final_answer(state) == "answer: echo: hello"
    first_run = client.runs.get(thread_id, first)
    second_run = client.runs.get(thread_id, second["run_id"])
    assert first_run["status"] == second_run["status"] == "success"
    assert "unblocked" in [m["content"] for m in tool_messages(state)]  # the first ran to its end


def test_multitask_interrupt_stops_the_active_run(production_stack: Stack) -> None:
    client = production_stack.sdk()
    thread_id, first = production_stack.blocked_run()

    client.runs.create(thread_id, "agent", input=QUESTION, multitask_strategy="interrupt")

    state = production_stack.wait_done(thread_id)
    assert final_answer(state) == "answer: echo: hello"
    assert client.runs.get(thread_id, first)["status"] == "interrupted"
    assert "unblocked" not in [m["content"] for m in tool_messages(state)]


def test_multitask_rollback_deletes_the_active_run(production_stack: Stack) -> None:
    client = production_stack.sdk()
    thread_id, first = production_stack.blocked_run()

    client.runs.create(thread_id, "agent", input=QUESTION, multitask_strategy="rollback")

    state = production_stack.wait_done(thread_id)
    assert final_answer(state) == "answer: echo: hello"
    with pytest.raises(httpx.HTTPStatusError) as gone:
        client.runs.get(thread_id, first)
    assert gone.value.response.status_code == 404
    history = client.threads.get_history(thread_id, limit=100)
    assert all(h["metadata"].get("run_id") != first for h in history)
    asked = [m["content"] for m in state["values"]["messages"] if m["type"] == "human"]
    assert asked == ["hello there"]  # the rolled-back question is gone


def test_completion_webhook_is_signed_like_task_callbacks(embedded_stack: Stack) -> None:
    client = embedded_stack.sdk()
    thread_id = client.threads.create()["thread_id"]

    with receiving([500, 200]) as receiver:  # the first delivery fails and is retried
        run = client.runs.create(thread_id, "agent", input=QUESTION, webhook=receiver.url)
        embedded_stack.wait_for("the webhook", lambda: len(receiver.received) == 2)

    for headers, body in receiver.received:
        verify(embedded_stack.env["GRAPHRELAY_WEBHOOK_SECRET"], body, headers)
    payload = json.loads(receiver.received[-1][1])
    assert payload["run_id"] == run["run_id"]
    assert payload["status"] == "success"
    assert payload["values"]["messages"][0]["content"] == "hello there"


def test_a_webhook_that_is_not_a_url_is_422(embedded_stack: Stack) -> None:
    client = embedded_stack.sdk()
    thread_id = client.threads.create()["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.create(thread_id, "agent", input=QUESTION, webhook="not a url")
    assert refused.value.response.status_code == 422


async def test_background_task_progress_streams_as_custom_events(embedded_stack: Stack) -> None:
    client = get_client(url=embedded_stack.base_url, api_key=None)
    thread_id = (await client.threads.create())["thread_id"]
    question = {"messages": [{"role": "user", "content": "count slowly please"}]}
    fractions: list[float] = []

    async def watch() -> None:
        async for part in await client.threads.join_stream(thread_id):
            if part.event == "metadata":  # subscribed: now start the run
                await client.runs.create(thread_id, "agent", input=question)
            elif part.event == "custom" and part.data["type"] == "background_task_progress":
                assert part.data["tool"] == "count_slowly"
                fractions.append(part.data["fraction"])
                if part.data["fraction"] == 1.0:
                    return

    await asyncio.wait_for(watch(), timeout=60)

    assert fractions == [0.25, 0.5, 0.75, 1.0]
    state = embedded_stack.wait_done(thread_id)
    assert final_answer(state) == "counted: counted to 4"


def test_forged_progress_reports_are_refused(embedded_stack: Stack) -> None:
    from graphrelay.config import new_webhook_secret

    body = {"task_id": "gr-x", "thread_id": "t", "fraction": 0.5}
    raw = json.dumps(body)
    headers = signed_headers(new_webhook_secret(), "msg_1", raw)
    forged = httpx.post(f"{embedded_stack.base_url}/internal/tasks/progress", content=raw,
                        headers=headers, timeout=10)  # fmt: skip
    unknown = httpx.post(
        f"{embedded_stack.base_url}/internal/tasks/progress",
        content=raw,
        headers=signed_headers(embedded_stack.env["GRAPHRELAY_WEBHOOK_SECRET"], "msg_2", raw),
        timeout=10,
    )
    assert forged.status_code == 401
    assert unknown.status_code == 404


BLOCK = {"messages": [{"role": "user", "content": "block the run"}]}


async def _run_status(client: Any, thread_id: str, wanted: str) -> dict[str, Any]:
    """Poll until the thread's newest run has status `wanted`; that run."""
    for _ in range(1200):
        runs = await client.runs.list(thread_id)
        if runs and runs[0]["status"] == wanted:
            return dict(runs[0])
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no run of {thread_id} became {wanted}: {runs}")


@pytest.mark.parametrize(("mode", "outcome"), [("cancel", "interrupted"), ("continue", "success")])
async def test_stream_on_disconnect(embedded_stack: Stack, mode: str, outcome: str) -> None:
    client = get_client(url=embedded_stack.base_url, api_key=None)
    thread_id = (await client.threads.create())["thread_id"]

    stream = client.runs.stream(thread_id, "agent", input=BLOCK, on_disconnect=mode)
    async with contextlib.aclosing(stream):  # leave after the first event: a disconnect
        first = await anext(aiter(stream))
    assert first.event == "metadata"

    run = await _run_status(client, thread_id, outcome)
    assert run["run_id"] == first.data["run_id"]


@pytest.mark.parametrize(("mode", "outcome"), [("cancel", "interrupted"), ("continue", "success")])
async def test_wait_on_disconnect(embedded_stack: Stack, mode: str, outcome: str) -> None:
    client = get_client(url=embedded_stack.base_url, api_key=None)
    thread_id = (await client.threads.create())["thread_id"]

    waiting = asyncio.create_task(
        client.runs.wait(thread_id, "agent", input=BLOCK, on_disconnect=mode)
    )
    await _run_status(client, thread_id, "running")
    waiting.cancel()  # the client gives up: its connection closes
    with contextlib.suppress(asyncio.CancelledError):
        await waiting

    await _run_status(client, thread_id, outcome)


async def test_join_stream_cancel_on_disconnect(embedded_stack: Stack) -> None:
    client = get_client(url=embedded_stack.base_url, api_key=None)
    thread_id = (await client.threads.create())["thread_id"]
    run = await client.runs.create(thread_id, "agent", input=BLOCK)
    await _run_status(client, thread_id, "running")

    stream = client.runs.join_stream(thread_id, run["run_id"], cancel_on_disconnect=True)
    async with contextlib.aclosing(stream):
        first = await anext(aiter(stream))
    assert first.event == "metadata"

    await _run_status(client, thread_id, "interrupted")
