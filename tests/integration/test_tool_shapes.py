"""Every callable shape `@background_tool` accepts runs on real workers of both pools and
gives the agent its real return value (issue 13, item 5): `async def` on the gevent io pool
(an async HTTP client) and on the prefork cpu pool, a `functools.partial`, a callable object,
a bound method, with defaults and keyword-only arguments."""

from __future__ import annotations

from graphrelay.bridge.calls import CallStatus
from tests.support.stack import Stack, final_answer, tool_messages

EXPECTED = {
    "fetch_title": "graphrelay",  # async def, io pool, a real HTTP request
    "sum_slowly": "6",  # async def, cpu pool, keyword-only argument defaulted
    "scale_by_three": "7.0",  # functools.partial, keyword-only argument given
    "greet": "hello, Ada?",  # a callable object, keyword-only argument given
    "add_to_ten": "20",  # a bound method, a default overridden
}


def test_every_tool_shape_returns_its_real_value(stack: Stack) -> None:
    thread_id = stack.start_thread("call every tool shape")

    state = stack.wait_done(thread_id)

    results = {m["name"]: (m["content"], m["status"]) for m in tool_messages(state)}
    assert results == {name: (value, "success") for name, value in EXPECTED.items()}
    assert final_answer(state) == "shapes done"
    records = stack.records(thread_id)
    assert {r.tool: r.queue for r in records} == {
        "fetch_title": "io", "sum_slowly": "cpu", "scale_by_three": "cpu", "greet": "io",
        "add_to_ten": "cpu",
    }  # fmt: skip
    assert all(r.status == CallStatus.APPLIED and r.attempts == 1 for r in records)
