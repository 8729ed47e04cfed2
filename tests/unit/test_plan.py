"""Plan validation and the scripted model's structured output."""

from __future__ import annotations

import re

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from graphrelay.graphs.plan_execute.plan import (
    Plan,
    PlanError,
    Task,
    depth,
    ready_tasks,
    validate_plan,
)
from graphrelay.graphs.scripted import ScriptedChatModel


def _plan(*tasks: tuple[str, list[str]]) -> Plan:
    return Plan(
        reasoning="r",
        tasks=[Task(id=i, description=i, tool="none", depends_on=deps) for i, deps in tasks],
    )


def test_a_valid_diamond_passes_and_has_depth_three() -> None:
    plan = _plan(("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"]))

    validate_plan(plan)

    assert depth(plan) == 3
    assert [t.id for t in ready_tasks(plan, done={"a"}, started={"a"})] == ["b", "c"]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (_plan(), "the plan has no tasks"),
        (_plan(("a", []), ("a", [])), "task ids must be unique; repeated: ['a']"),
        (_plan(("a", ["x", "y"])), "task 'a' depends on unknown tasks ['x', 'y']"),
        (_plan(("a", ["a"])), "dependencies form a cycle (→ means depends on): a → a"),
        (
            _plan(("a", ["c"]), ("b", ["a"]), ("c", ["b"])),
            "dependencies form a cycle (→ means depends on): ",
        ),
    ],
)
def test_invalid_plans_say_what_is_wrong(plan: Plan, message: str) -> None:
    with pytest.raises(PlanError, match=re.escape(message)):
        validate_plan(plan)


def test_scripted_structured_output_plays_turns_by_ai_messages_after_the_first_question() -> None:
    model = ScriptedChatModel(
        scripts={
            "Plan:weather": [
                {"content": "not json"},
                {"json": {"reasoning": "r", "tasks": []}},
            ]
        }
    )
    runnable = model.with_structured_output(Plan, include_raw=True)
    first = [HumanMessage("the weather please")]

    bad = runnable.invoke(first)
    good = runnable.invoke([*first, AIMessage("not json"), HumanMessage("fix it")])

    assert bad["parsed"] is None and "Invalid JSON" in str(bad["parsing_error"])
    assert good["parsed"] == Plan(reasoning="r", tasks=[])


def test_scripted_structured_output_without_a_matching_script_is_a_clear_error() -> None:
    model = ScriptedChatModel(scripts={"default": [{"content": "hi"}]})

    with pytest.raises(ValueError, match="no Plan:KEY script matches"):
        model.with_structured_output(Plan).invoke([HumanMessage("anything")])
