"""The example agent's tools: index documents (cpu), search them, fetch a URL (io), notify.

Indexes are saved under the data directory, which the API and the workers share (the same
disk when embedded; a shared volume in production).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, ToolException, tool

from graphrelay.bridge import background_tool
from graphrelay.config import load_settings
from graphrelay.tools.documents import build_index, index_summary, load_index, save_index, search
from graphrelay.tools.web import fetch_text


def _index_file(name: str) -> Path:
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"index name {name!r} may hold only letters, digits, '-' and '_'")
    return load_settings().index_dir / f"{name}.json"


@background_tool(queue="cpu", idempotent=True, timeout=900)
def index_documents(path: str, name: str = "default") -> dict[str, Any]:
    """Read the text, Markdown and PDF files under `path`, chunk them and save a searchable
    index called `name`. Returns how many files, chunks and characters were indexed."""
    index = build_index(Path(path))
    save_index(index, _index_file(name))
    return {"index": name, **index_summary(index)}


@tool
def search_index(query: str, name: str = "default") -> str:
    """Search the saved index `name` for `query`; returns the best matching passages."""
    try:
        hits = search(load_index(_index_file(name)), query, k=3)
    except (OSError, ValueError) as exc:  # no index yet, a bad name, a damaged file
        raise ToolException(f"search_index failed: {exc}") from exc
    if not hits:
        return f"no passage in index {name!r} matches {query!r}"
    return "\n\n".join(f"[{hit.source} #{hit.chunk_no}] {_clip(hit.text)}" for hit in hits)


def _clip(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


@background_tool(queue="io", idempotent=True, timeout=120)
def fetch_url(url: str) -> dict[str, Any]:
    """Fetch an http(s) URL and return its title and readable text."""
    return fetch_text(url).model_dump()


@background_tool(queue="io", fire_and_forget=True, timeout=60)
def notify(message: str, channel: str = "log") -> str:
    """Send a notification without waiting for it (written to the notifications log)."""
    log_file = load_settings().data_dir / "notifications.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    entry = {"at": time.time(), "channel": channel, "message": message}
    with log_file.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    return f"notified {channel}"


# The model reads a failed search as a tool error, and carries on.
search_index.handle_tool_error = True

TOOLS: list[BaseTool] = [index_documents.tool, search_index, fetch_url.tool, notify.tool]
