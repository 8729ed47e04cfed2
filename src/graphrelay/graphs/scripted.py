"""An offline chat model that plays a declared script of tool calls and answers."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self
from uuid import uuid4

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

BUNDLED_SCRIPTS_DIR = Path(__file__).parent / "scripts"
DEFAULT_SCRIPT = "default"
# What a script's `$VAR` means when the variable is not set: the demo indexes the documents
# that ship with graphrelay (the same installation serves the API and the workers).
SCRIPT_DEFAULTS = {"GRAPHRELAY_DEMO_DOCS": str(BUNDLED_SCRIPTS_DIR / "demo-docs")}
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")

# `Plan:weather`: a script for structured output of the pydantic model `Plan`.
_STRUCTURED_KEY = re.compile(r"^[A-Z]\w*:")
_PLACEHOLDER = re.compile(r"\{tool:([^{}]+)\}|\{tools\}")


class ScriptToolCall(BaseModel):
    """One tool call the scripted model emits."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class ScriptTurn(BaseModel):
    """One model reply: tool calls, a content message, or a JSON object (structured output)."""

    model_config = ConfigDict(extra="forbid")

    tool_calls: list[ScriptToolCall] | None = None
    content: str | None = None
    json_: dict[str, Any] | None = Field(default=None, alias="json")

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Self:
        kinds = [self.tool_calls, self.content, self.json_]
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError("a script turn needs exactly one of 'tool_calls', 'content', 'json'")
        if self.tool_calls == []:
            raise ValueError("'tool_calls' must list at least one call")
        return self


class ScriptedChatModel(BaseChatModel):
    """Replies from `scripts`, picked by the last human message and the turns taken since."""

    scripts: dict[str, list[ScriptTurn]]

    @model_validator(mode="after")
    def _scripts_not_empty(self) -> Self:
        if not self.scripts:
            raise ValueError("ScriptedChatModel needs at least one script")
        empty = [key for key, turns in self.scripts.items() if not turns]
        if empty:
            raise ValueError(f"scripts with no turns: {empty}")
        return self

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @classmethod
    def from_file(cls, path: Path) -> ScriptedChatModel:
        """Load a model from a JSON file shaped `{"scripts": {key: [turn, ...]}}`."""
        if not path.is_file():
            raise FileNotFoundError(f"no script file at {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"script file {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or "scripts" not in data:
            raise ValueError(f'script file {path} must be a JSON object with a "scripts" key')
        try:
            return cls(scripts=data["scripts"])
        except ValidationError as exc:
            raise ValueError(f"script file {path} is invalid: {exc}") from exc

    @classmethod
    def from_spec(cls, spec: str) -> ScriptedChatModel:
        """Load a model from a JSON file path or the name of a bundled script."""
        if Path(spec).is_file():
            return cls.from_file(Path(spec))
        bundled = BUNDLED_SCRIPTS_DIR / f"{spec}.json"
        # Only plain names count as bundled, so a spec cannot reach outside the scripts dir.
        if Path(spec).name == spec and bundled.is_file():
            return cls.from_file(bundled)
        raise FileNotFoundError(
            f"{spec!r} is neither a script file nor a bundled script; "
            f"bundled scripts: {bundled_scripts()}"
        )

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Check that the scripts only use the given tools, then return this model."""
        bound = {_tool_name(tool) for tool in tools}
        unknown = sorted(self.tool_names() - bound)
        if unknown:
            raise ValueError(
                f"the script uses tools that are not bound: {unknown}; bound: {sorted(bound)}"
            )
        return self

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Play the `SCHEMA:key` scripts and parse each reply into `schema` (a pydantic model).

        A structured exchange (attempt, feedback, attempt…) is one script: the key is looked
        for in the first human message and the turn is the number of AI messages after it.
        A `json` turn is the object to return; a `content` turn is raw text (to test bad JSON).
        """
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise TypeError("ScriptedChatModel's structured output takes a pydantic model class")
        model_class: type[BaseModel] = schema

        def reply(messages: LanguageModelInput) -> Any:
            raw = self._structured_reply(model_class.__name__, _as_messages(messages))
            try:
                parsed: BaseModel | None = model_class.model_validate_json(str(raw.content))
                error: Exception | None = None
            except ValidationError as exc:
                parsed, error = None, exc
            if include_raw:
                return {"raw": raw, "parsed": parsed, "parsing_error": error}
            if error is not None:
                raise error
            return parsed

        return RunnableLambda(reply)

    def _structured_reply(self, schema_name: str, messages: list[BaseMessage]) -> AIMessage:
        first_human = next((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), -1)
        text = str(messages[first_human].text) if first_human >= 0 else ""
        prefix = f"{schema_name}:"
        scripts = {
            k.removeprefix(prefix): v for k, v in self.scripts.items() if k.startswith(prefix)
        }
        key = _pick_key(scripts, text)
        if key is None:
            raise ValueError(f"no {prefix}KEY script matches the first human message: {text!r}")
        turns = scripts[key]
        turn_no = sum(isinstance(m, AIMessage) for m in messages[first_human + 1 :])
        turn = turns[min(turn_no, len(turns) - 1)]
        if turn.tool_calls is not None:
            raise ValueError(f"structured script {prefix}{key} has a tool_calls turn")
        content = turn.content if turn.json_ is None else json.dumps(turn.json_)
        return AIMessage(content=content or "")

    def tool_names(self) -> set[str]:
        """Every tool name the scripts call or reference in `{tool:NAME}` placeholders."""
        names: set[str] = set()
        for turns in self.scripts.values():
            for turn in turns:
                names.update(call.name for call in turn.tool_calls or [])
                names.update(
                    m.group(1) for m in _PLACEHOLDER.finditer(turn.content or "") if m.group(1)
                )
        return names

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # A reply takes microseconds: no worker thread for it, as a real async client needs none.
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        human_at = _last_human_index(messages)
        human_text = str(messages[human_at].text) if human_at >= 0 else ""
        since_human = messages[human_at + 1 :]
        key = self._pick_script(human_text)
        turns = self.scripts[key]
        turn_no = sum(isinstance(m, AIMessage) for m in since_human)
        if turn_no < len(turns):
            turn = turns[turn_no]
        elif turns[-1].content is not None:
            turn = turns[-1]
        else:
            return AIMessage(content=f"(script {key!r} is exhausted after {len(turns)} turns)")
        if turn.tool_calls is not None:
            return AIMessage(content="", tool_calls=[_to_tool_call(c) for c in turn.tool_calls])
        if turn.json_ is not None:
            return AIMessage(content=json.dumps(turn.json_))
        tool_results = [m for m in since_human if isinstance(m, ToolMessage)]
        return AIMessage(content=_fill(turn.content or "", tool_results))

    def _pick_script(self, human_text: str) -> str:
        plain = {k: v for k, v in self.scripts.items() if not _STRUCTURED_KEY.match(k)}
        key = _pick_key(plain, human_text)
        if key is not None:
            return key
        raise ValueError(
            f"no script key occurs in the last human message and there is no "
            f"{DEFAULT_SCRIPT!r} script; keys: {list(self.scripts)}"
        )


def _pick_key(scripts: dict[str, list[ScriptTurn]], text: str) -> str | None:
    """The first key that occurs in `text`, else `default` if there is one."""
    lowered = text.lower()
    for key in scripts:
        if key != DEFAULT_SCRIPT and key.lower() in lowered:
            return key
    return DEFAULT_SCRIPT if DEFAULT_SCRIPT in scripts else None


def _as_messages(value: LanguageModelInput) -> list[BaseMessage]:
    if isinstance(value, list) and all(isinstance(m, BaseMessage) for m in value):
        return value
    raise TypeError("ScriptedChatModel's structured output takes a list of messages")


def bundled_scripts() -> list[str]:
    """Names of the scripts shipped in `graphrelay/models/scripts`."""
    return sorted(p.stem for p in BUNDLED_SCRIPTS_DIR.glob("*.json"))


def _last_human_index(messages: list[BaseMessage]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return index
    return -1


def _to_tool_call(call: ScriptToolCall) -> ToolCall:
    return ToolCall(
        name=call.name, args=_expand_env(call.args), id=f"call_{uuid4().hex[:16]}", type="tool_call"
    )


def _fill(content: str, tool_results: list[ToolMessage]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "\n".join(str(m.text) for m in tool_results)
        for message in reversed(tool_results):
            if message.name == name:
                return str(message.text)
        return f"(no result from {name})"

    return _PLACEHOLDER.sub(replace, content)


def _tool_name(tool: dict[str, Any] | type | Callable[..., Any] | BaseTool) -> str:
    if isinstance(tool, BaseTool):
        return tool.name
    spec = convert_to_openai_tool(tool)
    function = spec.get("function")
    if isinstance(function, dict):
        return str(function.get("name", ""))
    return str(spec.get("name", ""))


def _expand_env(args: dict[str, Any]) -> dict[str, Any]:
    """`$VAR` in string arguments becomes the variable's value, so a script can name paths;
    a variable that is not set takes its default from `SCRIPT_DEFAULTS`, else stays as it is."""
    return {key: _expand(value) if isinstance(value, str) else value for key, value in args.items()}


def _expand(text: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return os.environ.get(name) or SCRIPT_DEFAULTS.get(name) or match.group(0)

    return _VARIABLE.sub(value, text)
