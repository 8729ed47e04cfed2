"""Chat models by name: `scripted:NAME` (offline) or any `init_chat_model` string."""

from __future__ import annotations

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel

from graphrelay.models.scripted import ScriptedChatModel


def load_chat_model(spec: str) -> BaseChatModel:
    """`scripted:demo` or `scripted:/path/script.json` plays a script; else `init_chat_model`."""
    if spec.startswith("scripted:"):
        return ScriptedChatModel.from_spec(spec.removeprefix("scripted:"))
    return init_chat_model(spec)
