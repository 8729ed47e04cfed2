"""Which callables `@background_tool` takes, and the clear error for those it cannot run; the
bodies run in process as a worker runs them."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from graphrelay import background_tool
from graphrelay.errors import ConfigurationError


async def _greet(name: str, *, punctuation: str = "!") -> str:
    """Greet `name`."""
    await asyncio.sleep(0)
    return f"hi {name}{punctuation}"


def _power(base: int, exponent: int = 2) -> int:
    """`base` to the `exponent`."""
    return int(base**exponent)


class _Adder:
    """Add to a fixed number."""

    def __init__(self, start: int) -> None:
        self.start = start

    def __call__(self, amount: int) -> int:
        return self.start + amount

    def add(self, amount: int, *, times: int = 1) -> int:
        """Add `amount` `times` times."""
        return self.start + amount * times


def test_an_async_body_runs_to_its_result() -> None:
    tool = background_tool(_greet, name="shapes_greet")
    assert tool.execute({"name": "Ada"}).result == "hi Ada!"
    assert tool.run_inline(name="Ada", punctuation="?") == "hi Ada?"


def test_an_async_body_runs_through_the_runner_the_worker_gives() -> None:
    ran: list[Any] = []

    def runner(coroutine: Any) -> Any:
        ran.append(coroutine)
        return asyncio.run(coroutine)

    tool = background_tool(_greet, name="shapes_greet_runner")
    assert tool.execute({"name": "Bo"}, runner).result == "hi Bo!"
    assert len(ran) == 1


@pytest.mark.parametrize(
    ("fn", "name", "args", "result", "schema"),
    [
        (functools.partial(_power, exponent=3), "shapes_cube", {"base": 2}, 8,
         ["base", "exponent"]),
        (_Adder(10), None, {"amount": 5}, 15, ["amount"]),
        (_Adder(10).add, "shapes_add", {"amount": 5, "times": 3}, 25, ["amount", "times"]),
        (functools.partial(_greet, punctuation="."), "shapes_greet_dot", {"name": "Cy"},
         "hi Cy.", ["name", "punctuation"]),
    ],
    ids=["partial", "callable-object", "bound-method", "async-partial"],
)  # fmt: skip
def test_other_callables_are_tools_with_their_own_arguments(
    fn: Any, name: str | None, args: dict[str, Any], result: Any, schema: list[str]
) -> None:
    tool = background_tool(queue="cpu", name=name)(fn)

    assert list(tool.args_schema.model_fields) == schema
    assert tool.description
    assert tool.execute(args).result == result


def test_a_callable_objects_name_and_description_come_from_its_class() -> None:
    tool = background_tool(_Adder(1))
    assert (tool.name, tool.description) == ("_Adder", "Add to a fixed number.")


def test_a_partials_description_is_its_functions() -> None:
    tool = background_tool(functools.partial(_power, exponent=3), name="shapes_cube_doc")
    assert tool.description == "`base` to the `exponent`."


def _numbers(count: int) -> Any:
    """Count up."""
    yield from range(count)


async def _async_numbers(count: int) -> Any:
    """Count up, async."""
    for n in range(count):
        yield n


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (_numbers, "is a generator"),
        (_async_numbers, "is a generator"),
        (lambda x: x, "a lambda a name"),
        (42, "needs a callable"),
    ],
    ids=["generator", "async-generator", "lambda", "not-callable"],
)
def test_shapes_a_worker_cannot_run_are_refused_when_declared(fn: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        background_tool(fn)


def test_a_method_decorated_in_its_class_is_refused_with_the_way_out() -> None:
    with pytest.raises(ConfigurationError, match=r"bound method"):

        class _Service:
            @background_tool
            def run(self, x: int) -> int:
                """Run."""
                return x

        del _Service
