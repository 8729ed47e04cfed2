"""Checks of every configured service: what `graphrelay doctor` prints and `/readyz` answers.

Each check returns a one-line detail, or raises `HealthCheckError` saying what is wrong and
how to fix it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx

from graphrelay.backends import open_checkpointer, open_ledger, urls
from graphrelay.config import Settings
from graphrelay.errors import GraphLoadError, HealthCheckError

Check = tuple[str, Callable[[Settings], str]]


def _broker(settings: Settings) -> str:
    if urls.broker_kind(settings.broker_url) == "filesystem":
        return _writable(settings.broker_folder, "broker folder")
    from kombu.connection import Connection

    try:
        with Connection(settings.broker_url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        raise HealthCheckError(
            f"cannot reach {settings.broker_url} ({exc}); start RabbitMQ "
            "(`rabbitmq-server -detached`) or set GRAPHRELAY_BROKER_URL"
        ) from exc
    return settings.broker_url


def _results(settings: Settings) -> str:
    url = settings.result_backend
    folder = urls.file_path(url)
    if folder is not None:
        return _writable(folder, "result folder")
    return _redis(url, "GRAPHRELAY_RESULT_BACKEND")


def _ledger(settings: Settings) -> str:
    if urls.is_redis(settings.ledger_url):
        _redis(settings.ledger_url, "GRAPHRELAY_LEDGER_URL")
    ledger = open_ledger(settings.ledger_url, settings.key_prefix, settings.thread_ttl_seconds)
    try:
        ledger.get("doctor-probe")
    finally:
        ledger.close()
    return settings.ledger_url


def _redis(url: str, variable: str) -> str:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise HealthCheckError(
            f"cannot reach Redis at {url} ({exc}); start redis-server or set {variable}"
        ) from exc
    return url


def _checkpointer(settings: Settings) -> str:
    async def probe() -> None:
        async with open_checkpointer(
            settings.checkpointer_url,
            prefix=settings.key_prefix,
            ttl_seconds=settings.thread_ttl_seconds,
        ):
            pass

    try:
        asyncio.run(probe())
    except Exception as exc:
        raise HealthCheckError(
            f"cannot open {settings.checkpointer_url} ({exc}); start the database or set "
            "GRAPHRELAY_CHECKPOINTER_URL"
        ) from exc
    return settings.checkpointer_url


def _secret(settings: Settings) -> str:
    try:
        settings.signing_secret  # noqa: B018 - reading it validates it
    except ValueError as exc:
        raise HealthCheckError(str(exc)) from exc
    return "set"


def _graphs(settings: Settings) -> str:
    from graphrelay.runtime.graphs import load_factory

    try:
        for spec in settings.graphs.values():
            load_factory(spec)
    except (ImportError, GraphLoadError) as exc:
        raise HealthCheckError(f"{exc}; fix GRAPHRELAY_GRAPHS") from exc
    return ", ".join(settings.graphs)


def _api(settings: Settings) -> str:
    health = settings.callback_url.split("/internal/")[0] + "/healthz"
    try:
        httpx.get(health, timeout=2).raise_for_status()
    except httpx.HTTPError as exc:
        raise HealthCheckError(
            f"no API answers at {health} ({exc}); workers cannot call back until "
            "`graphrelay serve` runs there (or set GRAPHRELAY_CALLBACK_URL)"
        ) from exc
    return health


def _writable(folder: Path, what: str) -> str:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise HealthCheckError(f"{what} {folder} is not writable ({exc})") from exc
    return str(folder)


CHECKS: list[Check] = [
    ("broker", _broker),
    ("results", _results),
    ("ledger", _ledger),
    ("checkpoints", _checkpointer),
    ("webhook secret", _secret),
    ("graphs", _graphs),
    ("api", _api),
]

# What an API replica needs to take traffic (the API's own health is not one of them).
READINESS_CHECKS = [check for check in CHECKS if check[0] in ("broker", "results", "ledger")]


def failing_checks(settings: Settings, checks: list[Check]) -> dict[str, str]:
    """Name → what is wrong, for each of `checks` that fails."""
    problems: dict[str, str] = {}
    for name, check in checks:
        try:
            check(settings)
        except HealthCheckError as exc:
            problems[name] = str(exc)
    return problems
