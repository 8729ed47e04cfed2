"""`@background_tool`: one definition gives a LangChain tool and a worker task.

Inside a graph the LangChain tool follows the bridge protocol: look the call's idempotency key
up in the ledger, return a stored outcome at once, otherwise record the intent, publish the
Celery task (key = task id) once, and `interrupt()` with a `background_task_pending` payload.
LangGraph re-runs the tool from its start on resume; the ledger lookup is what keeps that
re-run from dispatching again.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Callable
from typing import Any, overload

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_core.tools.base import create_schema_from_function
from langgraph.prebuilt import ToolRuntime
from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

from graphrelay.bridge import services
from graphrelay.bridge.calls import (
    PENDING_INTERRUPT_TYPE,
    CallOutcome,
    CallRecord,
    CallStatus,
    idempotency_key,
)
from graphrelay.config import WORK_QUEUES
from graphrelay.errors import BackgroundToolOutsideGraphError, ConfigurationError
from graphrelay.testing.crash import crash_point

log = logging.getLogger(__name__)

# Every background tool defined in this process, by name: what a worker registers as tasks.
_REGISTERED: dict[str, BackgroundTool] = {}
# Set by LangGraph in the config of every task that runs with a checkpointer.
_CHECKPOINTER_KEY = "__pregel_checkpointer"


class BackgroundTool:
    """A tool whose body runs on a Celery worker while the calling graph is suspended."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        queue: str,
        idempotent: bool,
        timeout: float | None,
        fire_and_forget: bool,
        name: str | None,
        description: str | None,
    ) -> None:
        if queue not in WORK_QUEUES:
            raise ConfigurationError(f"queue must be one of {WORK_QUEUES}, not {queue!r}")
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description or inspect.getdoc(fn) or ""
        if not self.description:
            raise ConfigurationError(
                f"background tool {self.name} needs a docstring or a description"
            )
        self.queue = queue
        self.idempotent = idempotent
        self.timeout = timeout
        self.fire_and_forget = fire_and_forget
        self.args_schema: type[BaseModel] = create_schema_from_function(self.name, fn)  # type: ignore[assignment]
        self.tool: BaseTool = StructuredTool(
            name=self.name,
            description=self.description,
            args_schema=self.args_schema,
            func=self._run_in_graph,
            coroutine=self._arun_in_graph,
            handle_tool_error=True,
        )
        _REGISTERED[self.name] = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._outside_graph()

    def _outside_graph(self) -> BackgroundToolOutsideGraphError:
        return BackgroundToolOutsideGraphError(
            f"{self.name} is a background tool: give `{self.name}.tool` to an agent whose graph "
            "has a checkpointer and a thread_id, or call `.run_inline(...)` to run its body here"
        )

    def run_inline(self, **kwargs: Any) -> Any:
        """Run the body in this process, validating arguments as a worker would."""
        return self.fn(**self._validated(kwargs))

    def _validated(self, args: dict[str, Any]) -> dict[str, Any]:
        model = self.args_schema.model_validate(args)
        return {name: getattr(model, name) for name in type(model).model_fields}

    # -- orchestrator side ---------------------------------------------------------------

    # ToolNode injects `runtime` only when it is annotated as plain ToolRuntime; the None
    # default lets a direct `.tool.invoke(...)` reach the clear outside-a-graph error.
    def _run_in_graph(self, runtime: ToolRuntime = None, **kwargs: Any) -> Any:  # type: ignore[assignment]
        bridge, intent = self._intent(runtime, kwargs)
        record = bridge.ledger.intend(intent)
        if record.finished:
            return _as_tool_result(record.outcome())
        if record.status == CallStatus.INTENDED:
            crash_point("after_intent")
            bridge.dispatcher.dispatch(record, bridge.callback_url)
            crash_point("after_publish")
            bridge.ledger.mark_dispatched(record.task_id)
        return self._suspend(record)

    async def _arun_in_graph(self, runtime: ToolRuntime = None, **kwargs: Any) -> Any:  # type: ignore[assignment]
        """`_run_in_graph` for graphs run on an event loop: the ledger is awaited there, and
        only the broker's blocking publish goes to a worker thread."""
        bridge, intent = self._intent(runtime, kwargs)
        record = await bridge.ledger.aintend(intent)
        if record.finished:
            return _as_tool_result(record.outcome())
        if record.status == CallStatus.INTENDED:
            crash_point("after_intent")
            await asyncio.to_thread(bridge.dispatcher.dispatch, record, bridge.callback_url)
            crash_point("after_publish")
            await bridge.ledger.amark_dispatched(record.task_id)
        return self._suspend(record)

    def _intent(
        self, runtime: ToolRuntime | None, kwargs: dict[str, Any]
    ) -> tuple[services.BridgeServices, CallRecord]:
        """The bridge, and the record of this call keyed by thread, namespace and tool call."""
        configurable = (runtime.config.get("configurable") or {}) if runtime else {}
        thread_id = configurable.get("thread_id")
        tool_call_id = runtime.tool_call_id if runtime else None
        if not thread_id or not tool_call_id or _CHECKPOINTER_KEY not in configurable:
            raise self._outside_graph()
        checkpoint_ns = str(configurable.get("checkpoint_ns", ""))
        bridge = services.current()
        return bridge, CallRecord(
            task_id=idempotency_key(str(thread_id), checkpoint_ns, str(tool_call_id)),
            thread_id=str(thread_id),
            checkpoint_ns=checkpoint_ns,
            tool_call_id=str(tool_call_id),
            tool=self.name,
            queue=self.queue,
            args=json.loads(json.dumps(kwargs, default=str)),
            fire_and_forget=self.fire_and_forget,
            deadline=time.time() + (self.timeout or bridge.default_timeout),
        )

    def _suspend(self, record: CallRecord) -> Any:
        """Interrupt until the outcome is back (a queued note for fire-and-forget calls)."""
        if self.fire_and_forget:
            return f"{self.name} queued on {self.queue} as task {record.task_id}"
        resumed_with = interrupt(self._pending_payload(record))
        return _as_tool_result(CallOutcome.model_validate(resumed_with))

    def _pending_payload(self, record: CallRecord) -> dict[str, Any]:
        return {
            "type": PENDING_INTERRUPT_TYPE,
            "task_id": record.task_id,
            "tool": self.name,
            "queue": self.queue,
            "args": record.args,
            "description": f"{self.name} running in the background on the {self.queue} queue",
        }

    # -- worker side ---------------------------------------------------------------------

    def execute(self, args: dict[str, Any]) -> CallOutcome:
        """Run the body with validated `args`; any exception becomes a readable error."""
        try:
            result = self.fn(**self._validated(args))
        except ValidationError as exc:
            return CallOutcome(task_id="", error=f"invalid arguments for {self.name}: {exc}")
        except Exception as exc:  # the model must see every failure as a tool error
            log.exception("background tool %s failed", self.name)
            return CallOutcome(task_id="", error=f"{self.name} failed: {type(exc).__name__}: {exc}")
        return CallOutcome(task_id="", result=_jsonable(result))


def registered_tools() -> list[BackgroundTool]:
    """Every background tool defined (imported) in this process so far."""
    return list(_REGISTERED.values())


def _jsonable(value: Any) -> Any:
    """Tool results cross the wire as JSON; pydantic models and the like become plain data."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.loads(json.dumps(value, default=str))


def _as_tool_result(outcome: CallOutcome) -> str:
    if outcome.failed:
        raise ToolException(outcome.error)
    result = outcome.result
    return result if isinstance(result, str) else json.dumps(result)


@overload
def background_tool(fn: Callable[..., Any], /) -> BackgroundTool: ...


@overload
def background_tool(
    *,
    queue: str = "io",
    idempotent: bool = False,
    timeout: float | None = None,
    fire_and_forget: bool = False,
    name: str | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], BackgroundTool]: ...


def background_tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    queue: str = "io",
    idempotent: bool = False,
    timeout: float | None = None,
    fire_and_forget: bool = False,
    name: str | None = None,
    description: str | None = None,
) -> BackgroundTool | Callable[[Callable[..., Any]], BackgroundTool]:
    """Declare a background tool: `@background_tool(queue="cpu", idempotent=True, timeout=600)`.

    `fire_and_forget=True` dispatches and returns at once instead of suspending the agent.
    """

    def wrap(function: Callable[..., Any]) -> BackgroundTool:
        return BackgroundTool(
            function,
            queue=queue,
            idempotent=idempotent,
            timeout=timeout,
            fire_and_forget=fire_and_forget,
            name=name,
            description=description,
        )

    return wrap(fn) if fn is not None else wrap
