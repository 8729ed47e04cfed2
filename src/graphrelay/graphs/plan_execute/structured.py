"""Structured output from any chat model, with bad replies turned into readable errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


@dataclass
class Reply(Generic[M]):
    """A structured reply: the raw message (kept in the exchange) and the model or an error."""

    raw: AIMessage
    parsed: M | None
    error: str | None


async def ask(model: BaseChatModel, schema: type[M], messages: list[BaseMessage]) -> Reply[M]:
    """Ask `model` for a `schema` object; a reply that does not parse becomes `error`."""
    # OpenAI-compatible servers get a JSON schema response format; other providers their
    # own default (tool calling for most).
    options: dict[str, Any] = {"method": "json_schema"} if isinstance(model, ChatOpenAI) else {}
    runnable = model.with_structured_output(schema, include_raw=True, **options)
    name = schema.__name__
    try:
        out: dict[str, Any] = await runnable.ainvoke(messages)  # type: ignore[assignment]
    except ValueError as exc:  # the OpenAI client parses JSON itself and raises on bad JSON
        return Reply(AIMessage(content=f"(a reply that is not a valid {name})"), None,
                     f"the reply is not a valid {name}: {_short(exc)}")  # fmt: skip
    if out.get("parsing_error") is not None or out.get("parsed") is None:
        why = _short(out.get("parsing_error")) or "no structured output in the reply"
        return Reply(_as_text(out["raw"]), None, f"the reply is not a valid {name}: {why}")
    parsed = out["parsed"]
    if not isinstance(parsed, schema):
        parsed = schema.model_validate(parsed)
    return Reply(AIMessage(content=parsed.model_dump_json()), parsed, None)


def _as_text(raw: object) -> AIMessage:
    """The reply as plain text: no tool calls or parsed objects to carry into the exchange."""
    if isinstance(raw, AIMessage):
        text = raw.text or "".join(str(call["args"]) for call in raw.tool_calls)
        return AIMessage(content=text)
    return AIMessage(content=str(raw))


def _short(error: object, limit: int = 600) -> str:
    text = str(error or "")
    return text if len(text) <= limit else text[:limit] + " …"
