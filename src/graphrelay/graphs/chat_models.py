"""Chat models by name: `scripted:NAME` (offline), any `init_chat_model` string, or a model
on an OpenAI-compatible endpoint."""

from __future__ import annotations

import os

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel

from graphrelay.config import Settings
from graphrelay.graphs.scripted import ScriptedChatModel


def load_chat_model(spec: str, base_url: str = "", api_key: str = "") -> BaseChatModel:
    """`scripted:demo` or `scripted:/path/script.json` plays a script; else `init_chat_model`.

    With `base_url`, `spec` is a model name (an `openai:` prefix is allowed) served by that
    OpenAI-compatible endpoint.
    """
    if spec.startswith("scripted:"):
        return ScriptedChatModel.from_spec(spec.removeprefix("scripted:"))
    if base_url:
        # Local servers often need no key, but the OpenAI client refuses to start without one.
        key = api_key or os.environ.get("OPENAI_API_KEY") or "unused"
        return init_chat_model(
            spec.removeprefix("openai:"), model_provider="openai", base_url=base_url, api_key=key
        )
    return init_chat_model(spec)


def planner_model(settings: Settings) -> BaseChatModel:
    """The model that plans and joins: `planner_model`, else `model`."""
    return load_chat_model(
        settings.planner_model or settings.model,
        settings.planner_base_url,
        settings.model_api_key.get_secret_value(),
    )


def executor_model(settings: Settings) -> BaseChatModel:
    """The model that acts on one task with tools: `executor_model`, else `model`."""
    return load_chat_model(
        settings.executor_model or settings.model,
        settings.executor_base_url,
        settings.model_api_key.get_secret_value(),
    )
