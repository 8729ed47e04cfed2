"""Opens the ledger adapter that a URL names."""

from __future__ import annotations

from pathlib import Path

from graphrelay.bridge.ledger_redis import RedisLedger
from graphrelay.bridge.ledger_sqlite import SqliteLedger
from graphrelay.ports import Ledger


def open_ledger(url: str, prefix: str = "graphrelay") -> Ledger:
    """`sqlite:///path` or `redis://` / `rediss://` → a ledger adapter."""
    if url.startswith("sqlite:///"):
        return SqliteLedger(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("redis://", "rediss://")):
        return RedisLedger(url, prefix)
    raise ValueError(f"unsupported ledger URL {url!r}: use sqlite:///PATH or redis://HOST:PORT/DB")
