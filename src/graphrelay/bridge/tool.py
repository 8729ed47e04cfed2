"""`@background_tool`: one definition gives a LangChain tool and a worker task.

Inside a graph the LangChain tool follows the bridge protocol: look the call's idempotency key
up in the ledger, return a stored outcome at once, otherwise record the intent, publish the
Celery task (key = task id) once, and suspend the graph with an interrupt of the call's own id
(`wake_id`) and a `background_task_pending` payload. LangGraph re-runs the tool from its start
on resume; the ledger lookup is what keeps that re-run from dispatching again, and the only
place the call reads its outcome from. `call`/`acall` follow the same protocol from a plain
node.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, overload

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_core.tools.base import create_schema_from_function
from langgraph.errors import GraphInterrupt
from langgraph.prebuilt import ToolRuntime
from langgraph.types import Interrupt
from pydantic import BaseModel, ValidationError

from graphrelay.bridge import services
from graphrelay.bridge.calls import (
    PENDING_INTERRUPT_TYPE,
    CallOutcome,
    CallRecord,
    CallStatus,
    idempotency_key,
    wake_id,
)
from graphrelay.config import WORK_QUEUES
from graphrelay.errors import (
    BackgroundCallFailedError,
    BackgroundToolOutsideGraphError,
    ConfigurationError,
)
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
        _check_shape(fn)
        self.fn = fn
        self.name = name or _name_of(fn)
        self.description = description or _doc_of(fn)
        if not self.description:
            raise ConfigurationError(
                f"background tool {self.name} needs a docstring or a description"
            )
        self.queue = queue
        self.idempotent = idempotent
        self.timeout = timeout
        self.fire_and_forget = fire_and_forget
        self.args_schema: type[BaseModel] = create_schema_from_function(  # type: ignore[assignment]
            self.name, _as_function(fn, self.name)
        )
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
        """Run the body in this process, validating arguments as a worker would (an `async
        def` body on an event loop of its own)."""
        return _awaited(self.fn(**self._validated(kwargs)), asyncio.run)

    def _validated(self, args: dict[str, Any]) -> dict[str, Any]:
        model = self.args_schema.model_validate(args)
        return {name: getattr(model, name) for name in type(model).model_fields}

    # -- orchestrator side ---------------------------------------------------------------

    # ToolNode injects `runtime` only when it is annotated as plain ToolRuntime; the None
    # default lets a direct `.tool.invoke(...)` reach the clear outside-a-graph error.
    def _run_in_graph(self, runtime: ToolRuntime = None, **kwargs: Any) -> Any:  # type: ignore[assignment]
        if runtime is None:
            raise self._outside_graph()
        return _as_tool_result(self._call(runtime.config, runtime.tool_call_id, kwargs))

    async def _arun_in_graph(self, runtime: ToolRuntime = None, **kwargs: Any) -> Any:  # type: ignore[assignment]
        if runtime is None:
            raise self._outside_graph()
        return _as_tool_result(await self._acall(runtime.config, runtime.tool_call_id, kwargs))

    def call(self, config: RunnableConfig, *, call_id: str, **kwargs: Any) -> Any:
        """Call the tool from a plain node of a checkpointed graph (not through a ToolNode).

        `config` is the node's config; `call_id` names the call within the node and must be
        the same every time the node runs (LangGraph re-runs a node from its start on resume):
        it plays the part of a tool call id. Returns the body's result (JSON data); raises
        `BackgroundCallFailedError` with the readable error when the body failed, and
        suspends the graph while the call runs.
        """
        return _as_result(self._call(config, call_id, kwargs))

    async def acall(self, config: RunnableConfig, *, call_id: str, **kwargs: Any) -> Any:
        """`call` from an async node."""
        return _as_result(await self._acall(config, call_id, kwargs))

    def _call(self, config: RunnableConfig, call_id: str | None, args: dict[str, Any]) -> Any:
        """The bridge protocol (sync): the stored outcome, or dispatch once and suspend."""
        bridge, intent = self._intent(config, call_id, args)
        record = bridge.ledger.intend(intent)
        if record.finished:
            return record.outcome()
        if record.status == CallStatus.INTENDED:
            crash_point("after_intent")
            bridge.dispatcher.dispatch(record, bridge.callback_url)
            crash_point("after_publish")
            bridge.ledger.mark_dispatched(record.task_id)
        return self._suspend(record)

    async def _acall(
        self, config: RunnableConfig, call_id: str | None, args: dict[str, Any]
    ) -> Any:
        """`_call` for graphs run on an event loop: the ledger is awaited there, and only the
        broker's blocking publish goes to a worker thread."""
        bridge, intent = self._intent(config, call_id, args)
        record = await bridge.ledger.aintend(intent)
        if record.finished:
            return record.outcome()
        if record.status == CallStatus.INTENDED:
            crash_point("after_intent")
            await asyncio.to_thread(bridge.dispatcher.dispatch, record, bridge.callback_url)
            crash_point("after_publish")
            await bridge.ledger.amark_dispatched(record.task_id)
        return self._suspend(record)

    def _intent(
        self, config: RunnableConfig, call_id: str | None, kwargs: dict[str, Any]
    ) -> tuple[services.BridgeServices, CallRecord]:
        """The bridge, and the record of this call keyed by thread, namespace and call id."""
        configurable = config.get("configurable") or {}
        thread_id = configurable.get("thread_id")
        if not thread_id or not call_id or _CHECKPOINTER_KEY not in configurable:
            raise self._outside_graph()
        checkpoint_ns = str(configurable.get("checkpoint_ns", ""))
        bridge = services.current()
        return bridge, CallRecord(
            task_id=idempotency_key(str(thread_id), checkpoint_ns, str(call_id)),
            thread_id=str(thread_id),
            checkpoint_ns=checkpoint_ns,
            tool_call_id=str(call_id),
            tool=self.name,
            queue=self.queue,
            args=json.loads(json.dumps(kwargs, default=str)),
            fire_and_forget=self.fire_and_forget,
            deadline=time.time() + (self.timeout or bridge.default_timeout),
        )

    def _suspend(self, record: CallRecord) -> Any:
        """Suspend the graph until this call's outcome is stored (a queued note for
        fire-and-forget calls).

        The interrupt carries an id of its own, `wake_id(key)`, and the tool never reads a
        resume value: LangGraph hands resume values to `interrupt()` calls by their order in
        a task, which several background calls in one task (ToolNode's parallel calls, a node
        calling two tools in turn) cannot keep stable, so a value could reach the wrong call.
        An id of ours matches no `interrupt()` slot, so resuming it only re-runs the task,
        and the call then reads its own outcome from the ledger (the only way a call gets a
        result).
        """
        if self.fire_and_forget:
            return f"{self.name} queued on {self.queue} as task {record.task_id}"
        payload = self._pending_payload(record)
        raise GraphInterrupt((Interrupt(value=payload, id=wake_id(record.task_id)),))

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

    def execute(
        self, args: dict[str, Any], run_coroutine: CoroutineRunner = asyncio.run
    ) -> CallOutcome:
        """Run the body with validated `args`; any exception becomes a readable error.

        An `async def` body (or one that returns an awaitable) runs to its end through
        `run_coroutine`: `asyncio.run` by default; the worker's pool may give another (a
        gevent worker runs it on an OS thread of its own).
        """
        try:
            result = _awaited(self.fn(**self._validated(args)), run_coroutine)
        except ValidationError as exc:
            return CallOutcome(task_id="", error=f"invalid arguments for {self.name}: {exc}")
        except Exception as exc:  # the model must see every failure as a tool error
            log.exception("background tool %s failed", self.name)
            return CallOutcome(task_id="", error=f"{self.name} failed: {type(exc).__name__}: {exc}")
        return CallOutcome(task_id="", result=_jsonable(result))


CoroutineRunner = Callable[[Coroutine[Any, Any, Any]], Any]


def _awaited(result: Any, run_coroutine: CoroutineRunner) -> Any:
    """`result` itself, or, if the body gave an awaitable, what it resolves to."""
    if not inspect.isawaitable(result):
        return result

    async def wait() -> Any:
        return await result

    return run_coroutine(wait())


def _check_shape(fn: Callable[..., Any]) -> None:
    """Refuse at declaration the callables a worker could not run as a tool body."""
    if not callable(fn):
        raise ConfigurationError(f"a background tool needs a callable, not {fn!r}")
    target = _unwrapped(fn)
    if inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
        raise ConfigurationError(
            f"{_name_of(fn)} is a generator: a background tool returns one result; "
            "collect the items and return them as a list"
        )
    if inspect.isfunction(fn):
        first = next(iter(inspect.signature(fn).parameters), None)
        if first in ("self", "cls"):
            raise ConfigurationError(
                f"{fn.__qualname__} takes {first!r}: decorate a module-level function, or a "
                f"bound method (`background_tool(queue=...)(instance.{fn.__name__})`)"
            )


def _unwrapped(fn: Callable[..., Any]) -> Any:
    """The function that runs: under `functools.partial` layers, a callable object's
    `__call__`."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        return fn
    return type(fn).__call__


def _name_of(fn: Callable[..., Any]) -> str:
    """A function's or method's name, a callable object's class name."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None) or type(fn).__name__
    if name == "<lambda>":
        raise ConfigurationError("give a background tool made of a lambda a name: name=...")
    return str(name)


def _doc_of(fn: Callable[..., Any]) -> str:
    """The docstring of the function that runs; for a callable object, its `__call__`'s own
    (`object.__call__`'s says nothing of the tool), else its class's."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        return inspect.getdoc(fn) or ""
    own = type(fn).__call__.__doc__
    return inspect.cleandoc(own) if own else inspect.getdoc(type(fn)) or ""


def _as_function(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """`fn` as a plain function with the same signature, for LangChain's schema builder,
    which takes functions and methods only (not partials or callable objects)."""
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        return fn
    signature = inspect.signature(fn)

    def shape(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    shape.__signature__ = signature  # type: ignore[attr-defined]
    shape.__name__ = name
    shape.__annotations__ = {
        p.name: p.annotation
        for p in signature.parameters.values()
        if p.annotation is not inspect.Parameter.empty
    }
    return shape


def registered_tools() -> list[BackgroundTool]:
    """Every background tool defined (imported) in this process so far."""
    return list(_REGISTERED.values())


def _jsonable(value: Any) -> Any:
    """Tool results cross the wire as JSON; pydantic models and the like become plain data."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.loads(json.dumps(value, default=str))


def _as_result(outcome: Any) -> Any:
    """What `call` returns: the outcome's result, or its error raised."""
    if isinstance(outcome, CallOutcome):
        if outcome.failed:
            raise BackgroundCallFailedError(outcome.error)
        return outcome.result
    return outcome  # fire-and-forget: the queued note


def _as_tool_result(outcome: Any) -> str:
    if not isinstance(outcome, CallOutcome):
        return str(outcome)  # fire-and-forget: the queued note
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
