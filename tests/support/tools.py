"""Background tools the integration tests drive on real workers."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import time

import httpx
from langchain_core.tools import BaseTool, tool

from graphrelay.bridge import background_tool
from graphrelay.bridge.progress import report_progress
from graphrelay.config import load_settings


@background_tool(queue="io", idempotent=True, timeout=60)
def echo_later(text: str, seconds: float = 0.0) -> str:
    """Return `text` after `seconds`."""
    time.sleep(seconds)
    return f"echo: {text}"


@background_tool(queue="io", timeout=60)
def explode(message: str) -> str:
    """Always fails with `message`."""
    raise RuntimeError(message)


@background_tool(queue="cpu", idempotent=True, timeout=120)
def crunch(seconds: float) -> str:
    """Busy for `seconds`, then done (the SIGKILL test kills the worker meanwhile)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return f"crunched for {seconds} s"


@background_tool(queue="io", idempotent=True, timeout=60)
def count_slowly(steps: int) -> str:
    """Count to `steps`, reporting progress at each step."""
    for n in range(1, steps + 1):
        time.sleep(0.2)
        report_progress(n / steps, f"step {n} of {steps}")
    return f"counted to {steps}"


@background_tool(queue="cpu", idempotent=True, timeout=60)
def kill_worker(reason: str) -> str:
    """Kill the worker process that runs it, every time: a poison task."""
    os.kill(os.getpid(), signal.SIGKILL)
    return reason


@background_tool(queue="io", timeout=2)
def never_picked_up(text: str) -> str:
    """Return `text`; the deadline test runs no worker, so this never runs."""
    return text


@background_tool(queue="io", idempotent=True, timeout=120)
def gate(name: str) -> str:
    """Wait until the test opens the gate `name` (a file under the data folder); then
    return `result-NAME`."""
    opened = load_settings().data_dir / "gates" / name
    deadline = time.monotonic() + 110
    while not opened.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {name} was never opened")
        time.sleep(0.05)
    return f"result-{name}"


@background_tool(queue="io", idempotent=True, timeout=60)
async def fetch_title(url: str) -> str:
    """Fetch a JSON document over HTTP with an async client; its `info.title`."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
        response.raise_for_status()
    return str(response.json()["info"]["title"])


@background_tool(queue="cpu", idempotent=True, timeout=60)
async def sum_slowly(numbers: list[int], *, pause: float = 0.01) -> int:
    """Add `numbers`, pausing (asyncio) between them."""
    total = 0
    for number in numbers:
        await asyncio.sleep(pause)
        total += number
    return total


def _scale(value: float, factor: float, *, offset: float = 0.0) -> float:
    """Scale `value` by `factor`, then add `offset`."""
    return value * factor + offset


scale_by_three = background_tool(
    functools.partial(_scale, factor=3.0), queue="cpu", name="scale_by_three", idempotent=True
)


class Greeter:
    """Greet someone by name."""

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    def __call__(self, name: str, *, punctuation: str = "!") -> str:
        return f"{self.greeting}, {name}{punctuation}"


greet = background_tool(Greeter("hello"), queue="io", idempotent=True, name="greet")


class Counter:
    """A counter whose `add` is a tool, bound to one instance."""

    def __init__(self, start: int) -> None:
        self.start = start

    def add(self, amount: int, times: int = 1) -> int:
        """Add `amount` to the start value `times` times."""
        return self.start + amount * times


add_to_ten = background_tool(queue="cpu", idempotent=True, name="add_to_ten")(Counter(10).add)


@tool
def block(seconds: float) -> str:
    """Hold the run itself (in the API process) for `seconds`, so it can be cancelled."""
    time.sleep(seconds)
    return "unblocked"


TOOLS: list[BaseTool] = [
    echo_later.tool,
    explode.tool,
    crunch.tool,
    count_slowly.tool,
    kill_worker.tool,
    never_picked_up.tool,
    gate.tool,
    fetch_title.tool,
    sum_slowly.tool,
    scale_by_three.tool,
    greet.tool,
    add_to_ten.tool,
    block,
]
