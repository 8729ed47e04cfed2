"""ScriptedChatModel: script choice, turns, templating, tool binding and a real agent run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import ValidationError

from graphrelay.graphs import scripted
from graphrelay.graphs.scripted import ScriptedChatModel, ScriptTurn


@tool
def get_weather(city: str) -> str:
    """Return the weather for a city."""
    return f"sunny in {city}"


@tool
def get_time(city: str) -> str:
    """Return the local time in a city."""
    return f"12:00 in {city}"


def both_tools_script() -> dict[str, Any]:
    return {
        "weather": [
            {
                "tool_calls": [
                    {"name": "get_weather", "args": {"city": "Paris"}},
                    {"name": "get_time", "args": {"city": "Paris"}},
                ]
            },
            {"content": "Weather: {tool:get_weather}. Time: {tool:get_time}."},
        ]
    }


def test_agent_runs_parallel_tool_calls_then_answers() -> None:
    model = ScriptedChatModel(scripts=both_tools_script())
    agent = create_agent(model=model, tools=[get_weather, get_time])
    result = agent.invoke({"messages": [HumanMessage("What is the WEATHER like?")]})
    messages: list[BaseMessage] = result["messages"]
    first_ai = messages[1]
    assert isinstance(first_ai, AIMessage)
    assert [c["name"] for c in first_ai.tool_calls] == ["get_weather", "get_time"]
    assert all(
        str(c["id"]).startswith("call_") and len(str(c["id"])) == 21 for c in first_ai.tool_calls
    )
    assert sum(isinstance(m, ToolMessage) for m in messages) == 2
    final = messages[-1]
    assert isinstance(final, AIMessage)
    assert not final.tool_calls
    assert final.text == "Weather: sunny in Paris. Time: 12:00 in Paris."


async def test_agent_runs_async() -> None:
    model = ScriptedChatModel(scripts=both_tools_script())
    agent = create_agent(model=model, tools=[get_weather, get_time])
    result = await agent.ainvoke({"messages": [HumanMessage("weather please")]})
    assert result["messages"][-1].text == "Weather: sunny in Paris. Time: 12:00 in Paris."


def test_script_choice_by_first_matching_key_then_default() -> None:
    model = ScriptedChatModel(
        scripts={
            "default": [{"content": "fallback"}],
            "alpha": [{"content": "A"}],
            "beta": [{"content": "B"}],
        }
    )
    assert model.invoke("say Beta and ALPHA").text == "A"
    assert model.invoke("only beta").text == "B"
    assert model.invoke("nothing matches").text == "fallback"
    assert model.invoke("the word default is not a key match").text == "fallback"


def test_no_matching_script_names_the_keys() -> None:
    model = ScriptedChatModel(scripts={"alpha": [{"content": "A"}]})
    with pytest.raises(ValueError, match=r"keys: \['alpha'\]"):
        model.invoke("something else")


def test_turn_index_counts_ai_messages_after_last_human() -> None:
    model = ScriptedChatModel(
        scripts={"default": [{"content": "one"}, {"content": "two"}, {"content": "three"}]}
    )
    history: list[BaseMessage] = [
        HumanMessage("first"),
        AIMessage("one"),
        AIMessage("two"),
        HumanMessage("second"),
    ]
    assert model.invoke(history).text == "one"
    assert model.invoke([*history, AIMessage("one")]).text == "two"


def test_past_the_end_repeats_content_or_reports_exhaustion() -> None:
    model = ScriptedChatModel(
        scripts={
            "done": [{"content": "final answer"}],
            "loop": [{"tool_calls": [{"name": "get_time", "args": {}}]}],
        }
    )
    assert model.invoke([HumanMessage("done"), AIMessage("x"), AIMessage("y")]).text == (
        "final answer"
    )
    exhausted = model.invoke([HumanMessage("loop"), AIMessage("x")])
    assert not exhausted.tool_calls
    assert "exhausted" in exhausted.text


def test_templating_uses_latest_results_and_leaves_other_braces() -> None:
    model = ScriptedChatModel(
        scripts={
            "default": [
                {"tool_calls": [{"name": "t", "args": {}}]},
                {"content": '{"json": true} {tool:t} | {tool:missing} | {tools}'},
            ]
        }
    )
    messages: list[BaseMessage] = [
        HumanMessage("go"),
        AIMessage("", tool_calls=[{"name": "t", "args": {}, "id": "1", "type": "tool_call"}]),
        ToolMessage("old", name="t", tool_call_id="1"),
        ToolMessage("other", name="u", tool_call_id="2"),
        ToolMessage("new", name="t", tool_call_id="3"),
    ]
    assert model.invoke(messages).text == (
        '{"json": true} new | (no result from missing) | old\nother\nnew'
    )


def test_bind_tools_rejects_unknown_tool_names() -> None:
    model = ScriptedChatModel(scripts=both_tools_script())
    assert model.bind_tools([get_weather, get_time]) is model
    with pytest.raises(ValueError, match=r"not bound: \['get_time'\]"):
        model.bind_tools([get_weather])


def test_bind_tools_accepts_dict_and_function_tools() -> None:
    def get_time(city: str) -> str:
        """Return the local time in a city."""
        return city

    weather_schema = {
        "type": "function",
        "function": {"name": "get_weather", "description": "w", "parameters": {}},
    }
    model = ScriptedChatModel(scripts=both_tools_script())
    assert model.bind_tools([weather_schema, get_time]) is model


def test_turn_needs_exactly_one_kind() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        ScriptTurn()
    with pytest.raises(ValidationError, match="exactly one"):
        ScriptTurn(content="x", tool_calls=[{"name": "t", "args": {}}])
    with pytest.raises(ValidationError, match="at least one call"):
        ScriptTurn(tool_calls=[])
    with pytest.raises(ValidationError):
        ScriptTurn.model_validate({"contents": "typo"})


def test_empty_scripts_are_rejected() -> None:
    with pytest.raises(ValidationError, match="at least one script"):
        ScriptedChatModel(scripts={})
    with pytest.raises(ValidationError, match="no turns"):
        ScriptedChatModel(scripts={"default": []})


def test_from_file_and_from_spec(tmp_path: Path) -> None:
    file = tmp_path / "script.json"
    file.write_text(json.dumps({"scripts": {"default": [{"content": "from file"}]}}))
    assert ScriptedChatModel.from_file(file).invoke("hi").text == "from file"
    assert ScriptedChatModel.from_spec(str(file)).invoke("hi").text == "from file"


def test_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no script file"):
        ScriptedChatModel.from_file(tmp_path / "absent.json")
    with pytest.raises(FileNotFoundError, match="neither a script file nor a bundled script"):
        ScriptedChatModel.from_spec("no-such-script")
    with pytest.raises(FileNotFoundError, match="bundled scripts"):
        ScriptedChatModel.from_spec("../scripted")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ScriptedChatModel.from_file(broken)
    broken.write_text("[]")
    with pytest.raises(ValueError, match='"scripts" key'):
        ScriptedChatModel.from_file(broken)
    broken.write_text(json.dumps({"scripts": {"default": [{"content": 1, "tool_calls": []}]}}))
    with pytest.raises(ValueError, match="is invalid"):
        ScriptedChatModel.from_file(broken)


def test_from_spec_finds_bundled_scripts_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scripted, "BUNDLED_SCRIPTS_DIR", tmp_path)
    (tmp_path / "demo.json").write_text(json.dumps({"scripts": {"default": [{"content": "ok"}]}}))
    assert scripted.bundled_scripts() == ["demo"]
    assert ScriptedChatModel.from_spec("demo").invoke("hi").text == "ok"
