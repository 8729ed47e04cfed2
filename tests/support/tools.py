"""Background tools the integration tests drive on real workers."""

from __future__ import annotations

import os
import signal
import time

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
    block,
]
