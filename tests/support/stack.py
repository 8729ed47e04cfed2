"""A running graphrelay: API and io and cpu workers as real processes, and helpers to drive it."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from graphrelay.backends import open_ledger
from graphrelay.bridge.calls import CallRecord
from graphrelay.bridge.ledger import Ledger
from graphrelay.bridge.messages import signed_headers
from graphrelay.config import Settings, new_webhook_secret
from graphrelay.testing.processes import free_port, spawn, stop_all, wait_for_log, wait_healthy

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "tests" / "support" / "scripts.json"


def stack_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """Environment for the stack's processes: test tools and scripts, a fresh secret."""
    return {
        "GRAPHRELAY_DATA_DIR": str(data_dir),
        "GRAPHRELAY_API_PORT": str(free_port()),
        "GRAPHRELAY_WEBHOOK_SECRET": new_webhook_secret(),
        "GRAPHRELAY_TOOL_MODULES": json.dumps(["graphrelay.examples.tools", "tests.support.tools"]),
        "GRAPHRELAY_MODEL": f"scripted:{SCRIPTS}",
        "GRAPHRELAY_CALLBACK_BACKOFF_INITIAL": "0.2",
        "PYTHONPATH": str(REPO),
        **overrides,
    }


def production_env(data_dir: Path, vhost: str, prefix: str, **overrides: str) -> dict[str, str]:
    """Production profile on a RabbitMQ vhost; ledger, results and checkpoints in Redis db 9."""
    from tests.support.services import REDIS_URL

    return stack_env(
        data_dir,
        GRAPHRELAY_PROFILE="production",
        GRAPHRELAY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        GRAPHRELAY_RESULT_BACKEND=REDIS_URL,
        GRAPHRELAY_LEDGER_URL=REDIS_URL,
        GRAPHRELAY_CHECKPOINTER_URL=REDIS_URL,
        GRAPHRELAY_KEY_PREFIX=prefix,
        **overrides,
    )


@dataclass
class Stack:
    """The processes of one graphrelay deployment and a client for it."""

    env: dict[str, str]
    data_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        """The settings the processes read."""
        fields = {k.removeprefix("GRAPHRELAY_").lower(): v for k, v in self.env.items()
                  if k.startswith("GRAPHRELAY_") and k != "GRAPHRELAY_API2_PORT"}  # fmt: skip
        return Settings.model_validate(
            {k: json.loads(v) if k in ("tool_modules", "graphs") else v for k, v in fields.items()}
        )

    @property
    def base_url(self) -> str:
        """Where the (first) API listens."""
        return self.url("api")

    def log(self, name: str) -> Path:
        """A process's log file."""
        return self.data_dir / "logs" / f"{name}.log"

    def url(self, name: str = "api") -> str:
        """Where an API replica (`api`, or `api2` on GRAPHRELAY_API2_PORT) listens."""
        return f"http://127.0.0.1:{self._port(name)}"

    def _port(self, name: str) -> str:
        return self.env["GRAPHRELAY_API2_PORT" if name == "api2" else "GRAPHRELAY_API_PORT"]

    def start(self, *names: str, **extra_env: str) -> None:
        """Start `api`, `api2`, `io`, `cpu` and/or `sweeper` side by side, each with
        `extra_env` on top of the stack's environment, and wait until each is ready."""
        for name in names:
            env = {**self.env, **extra_env}
            if name.startswith("api"):
                args, env["GRAPHRELAY_API_PORT"] = ["serve"], self._port(name)
            else:
                args = ["sweeper"] if name == "sweeper" else ["worker", "--pool", name]
            self.processes[name] = spawn(args, env, self.log(name), cwd=REPO)
        for name in names:
            if name.startswith("api"):
                wait_healthy(self.url(name), self.processes[name])
            else:
                ready = "sweeper: every" if name == "sweeper" else " ready."
                wait_for_log(self.log(name), ready, self.processes[name])

    def stop(self, *names: str) -> None:
        """Stop the named processes (all of them when none is named)."""
        stop_all([self.processes.pop(name) for name in names or list(self.processes)])

    def ledger(self) -> Ledger:
        """The ledger the stack shares."""
        settings = self.settings
        return open_ledger(settings.ledger_url, settings.key_prefix)

    def sdk(self, name: str = "api") -> SyncLangGraphClient:
        """The real LangGraph SDK client, pointed at an API replica."""
        return get_sync_client(url=self.url(name), api_key=None)

    def start_thread(self, question: str) -> str:
        """Create a thread and start a run with `question`; the thread id."""
        client = self.sdk()
        thread = client.threads.create()
        client.runs.create(
            thread["thread_id"], "agent",
            input={"messages": [{"role": "user", "content": question}]},
        )  # fmt: skip
        return str(thread["thread_id"])

    def blocked_run(self, start_on: str = "api", watch_on: str = "api") -> tuple[str, str]:
        """A run started on replica `start_on` and seen running from `watch_on`, busy in its
        `block` tool for 3 s; its thread id and run id."""
        starter, watcher = self.sdk(start_on), self.sdk(watch_on)
        thread_id = starter.threads.create()["thread_id"]
        question = {"messages": [{"role": "user", "content": "block the run"}]}
        run_id = starter.runs.create(thread_id, "agent", input=question)["run_id"]
        self.wait_for(
            "the run to start", lambda: watcher.runs.get(thread_id, run_id)["status"] == "running"
        )
        return thread_id, run_id

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
        """Poll `check` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := check():
                return value
            time.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {what}; logs in {self.data_dir / 'logs'}")

    def wait_done(self, thread_id: str, timeout: float = 60) -> dict[str, Any]:
        """Wait until the thread is idle with no pending interrupts; its final state."""
        client = self.sdk()

        def done() -> dict[str, Any] | None:
            thread = client.threads.get(thread_id)
            if thread["status"] == "error":
                raise AssertionError(f"thread {thread_id} ended in error")
            state = client.threads.get_state(thread_id)
            return dict(state) if thread["status"] == "idle" and not state["interrupts"] else None

        result: dict[str, Any] = self.wait_for(f"thread {thread_id} to finish", done, timeout)
        return result

    def pending(self, thread_id: str, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until `count` interrupts are pending at once; their values. A quick call may
        suspend and resume between two polls, so the thread's history counts too."""
        client = self.sdk()

        def check() -> list[dict[str, Any]] | None:
            if client.threads.get(thread_id)["status"] == "error":
                raise AssertionError(f"thread {thread_id} ended in error")
            interrupts = client.threads.get_state(thread_id)["interrupts"]
            if len(interrupts) < count:
                history = client.threads.get_history(thread_id, limit=100)
                interrupts = next((h["interrupts"] for h in reversed(history)
                                   if len(h["interrupts"]) >= count), [])  # fmt: skip
            return [item["value"] for item in interrupts] if len(interrupts) >= count else None

        result: list[dict[str, Any]] = self.wait_for(
            f"{count} pending interrupt(s)", check, timeout
        )
        return result

    def records(self, thread_id: str) -> list[CallRecord]:
        """The thread's ledger records."""
        ledger = self.ledger()
        try:
            return ledger.for_thread(thread_id)
        finally:
            ledger.close()

    def post_callback(
        self,
        body: dict[str, Any],
        secret: str | None = None,
        now: float | None = None,
        replica: str = "api",
    ) -> httpx.Response:
        """POST a signed task callback to a replica, as a worker would (or forged, with
        another secret)."""
        raw = json.dumps(body)
        headers = signed_headers(
            secret or self.env["GRAPHRELAY_WEBHOOK_SECRET"], f"msg_{uuid.uuid4().hex}", raw, now
        )
        return httpx.post(f"{self.url(replica)}/internal/tasks/callback", content=raw,
                          headers=headers, timeout=10)  # fmt: skip


def final_answer(state: dict[str, Any]) -> str:
    """The last AI message's text."""
    for message in reversed(state["values"]["messages"]):
        if message["type"] == "ai" and message["content"]:
            return str(message["content"])
    raise AssertionError("no answer in the thread")


def tool_messages(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ToolMessage in the thread."""
    return [m for m in state["values"]["messages"] if m["type"] == "tool"]
