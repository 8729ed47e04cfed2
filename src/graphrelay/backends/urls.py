"""What a URL names: the one place graphrelay reads a URL's scheme.

`open_backends` (in this package's `__init__`) and the Celery app ask these questions; nothing
else tests a URL's prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from graphrelay.errors import ConfigurationError

REDIS_SCHEMES = ("redis://", "rediss://")
SQLITE_SCHEME = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
MEMORY_SCHEME = "memory://"
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")
FILESYSTEM_BROKER_SCHEMES = ("filesystem://", "graphrelay-filesystem://")
FILE_SCHEME = "file://"

StoreKind = Literal["redis", "sqlite"]
CheckpointerKind = Literal["redis", "sqlite", "postgres", "memory"]
BrokerKind = Literal["amqp", "filesystem", "other"]


def is_redis(url: str) -> bool:
    """A Redis URL (`redis://` or `rediss://`)."""
    return url.startswith(REDIS_SCHEMES)


def sqlite_path(url: str) -> Path:
    """The file a `sqlite:///PATH` URL names."""
    return Path(url.removeprefix(SQLITE_SCHEME))


def store_kind(url: str, what: str, variable: str) -> StoreKind:
    """Redis or SQLite, for the stores that support both (ledger, run records)."""
    if is_redis(url):
        return "redis"
    if url.startswith(SQLITE_SCHEME):
        return "sqlite"
    raise ConfigurationError(
        f"unsupported {what} URL {url!r} in {variable}: use sqlite:///PATH or redis://HOST:PORT/DB"
    )


def checkpointer_kind(url: str) -> CheckpointerKind:
    """Which saver a checkpointer URL names."""
    if is_redis(url):
        return "redis"
    if url.startswith(SQLITE_SCHEME):
        return "sqlite"
    if url.startswith(POSTGRES_SCHEMES):
        return "postgres"
    if url.startswith(MEMORY_SCHEME):
        return "memory"
    raise ConfigurationError(
        f"unsupported checkpointer URL {url!r}: use redis://..., sqlite:///PATH, "
        "postgresql://... or memory://"
    )


def broker_kind(url: str) -> BrokerKind:
    """RabbitMQ, the embedded file-system broker, or another kombu transport."""
    if url.startswith(AMQP_SCHEMES):
        return "amqp"
    if url.startswith(FILESYSTEM_BROKER_SCHEMES):
        return "filesystem"
    return "other"


def file_path(url: str) -> Path | None:
    """The folder a `file://` result backend names; None for any other URL."""
    return Path(url.removeprefix(FILE_SCHEME)) if url.startswith(FILE_SCHEME) else None
