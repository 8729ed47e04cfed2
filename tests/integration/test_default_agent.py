"""A new user's first message to the default agent, on the production profile with nothing
else configured, gets an answer (issue 13, "Also"): the scripted demo indexes the documents
graphrelay ships when `GRAPHRELAY_DEMO_DOCS` is not set, and a tool's missing file is a
readable tool error, not a thread in error."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import services
from tests.support.stack import Stack, final_answer, production_env, tool_messages

QUESTION = "What does graphrelay do with a suspended agent?"


@pytest.fixture(scope="module")
def default_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API and both workers with the defaults: the example agent and tools, `scripted:demo`."""
    assert "GRAPHRELAY_DEMO_DOCS" not in os.environ, "the test needs the variable unset"
    services.check_redis()
    data_dir = tmp_path_factory.mktemp("default-agent")
    vhost, prefix = services.new_vhost(), f"graphrelay-test-{uuid.uuid4().hex[:8]}"
    env = production_env(data_dir, vhost, prefix)
    for name in ("GRAPHRELAY_TOOL_MODULES", "GRAPHRELAY_MODEL"):
        env.pop(name)  # the defaults: graphrelay.examples.tools, scripted:demo
    stack = Stack(env, data_dir)
    try:
        stack.start("api", "io", "cpu")
        yield stack
    finally:
        stack.stop()
        services.drop_vhost(vhost)
        services.clear_prefix(prefix)


def _ask(stack: Stack, question: str) -> str:
    client = stack.sdk()
    thread_id = str(client.threads.create()["thread_id"])
    client.runs.create(thread_id, "agent",
                       input={"messages": [{"role": "user", "content": question}]})  # fmt: skip
    return thread_id


def test_the_first_message_to_the_default_agent_is_answered(default_agent: Stack) -> None:
    thread_id = _ask(default_agent, QUESTION)

    state = default_agent.wait_done(thread_id)

    statuses = {m["name"]: m["status"] for m in tool_messages(state)}
    assert statuses == {"index_documents": "success", "search_index": "success",
                        "notify": "success"}  # fmt: skip
    assert "suspend" in final_answer(state).lower()


def test_a_missing_index_is_a_readable_tool_error(default_agent: Stack, tmp_path: Path) -> None:
    # The worker indexes a folder that does not exist: index_documents fails, and
    # search_index finds no index; the agent reads both errors and answers.
    for index in (default_agent.data_dir / "indexes").glob("*.json"):
        index.unlink()  # the first test's index
    default_agent.stop("api")
    default_agent.start("api", GRAPHRELAY_DEMO_DOCS=str(tmp_path / "no-such-folder"))
    thread_id = _ask(default_agent, QUESTION)

    state = default_agent.wait_done(thread_id)

    by_name = {m["name"]: m for m in tool_messages(state)}
    assert by_name["search_index"]["status"] == "error"
    assert "no index at" in by_name["search_index"]["content"]
    assert by_name["index_documents"]["status"] == "error"
    assert "no file or directory" in by_name["index_documents"]["content"]
    assert "no index at" in final_answer(state)
