"""`graphrelay doctor`: checks each configured service and says how to fix what is wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
from rich.console import Console

from graphrelay.config import Settings

Check = tuple[str, Callable[[Settings], str]]


class CheckFailedError(Exception):
    """A check failed; the message says what is wrong and how to fix it."""


def _broker(settings: Settings) -> str:
    if settings.broker_url.startswith(("filesystem://", "graphrelay-filesystem://")):
        return _writable(settings.broker_folder, "broker folder")
    from kombu.connection import Connection

    try:
        with Connection(settings.broker_url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        raise CheckFailedError(
            f"cannot reach {settings.broker_url} ({exc}); start RabbitMQ "
            "(`rabbitmq-server -detached`) or set GRAPHRELAY_BROKER_URL"
        ) from exc
    return settings.broker_url


def _results(settings: Settings) -> str:
    url = settings.result_backend
    if url.startswith("file://"):
        return _writable(Path(url.removeprefix("file://")), "result folder")
    return _redis(url, "GRAPHRELAY_RESULT_BACKEND")


def _ledger(settings: Settings) -> str:
    from graphrelay.bridge.ledger import open_ledger

    if settings.ledger_url.startswith(("redis://", "rediss://")):
        _redis(settings.ledger_url, "GRAPHRELAY_LEDGER_URL")
    ledger = open_ledger(settings.ledger_url, settings.key_prefix)
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
        raise CheckFailedError(
            f"cannot reach Redis at {url} ({exc}); start redis-server or set {variable}"
        ) from exc
    return url


def _checkpointer(settings: Settings) -> str:
    from graphrelay.state.factory import open_checkpointer

    async def probe() -> None:
        async with open_checkpointer(
            settings.checkpointer_url,
            prefix=settings.key_prefix,
            ttl_seconds=settings.checkpoint_ttl_seconds,
        ):
            pass

    try:
        asyncio.run(probe())
    except Exception as exc:
        raise CheckFailedError(
            f"cannot open {settings.checkpointer_url} ({exc}); start the database or set "
            "GRAPHRELAY_CHECKPOINTER_URL"
        ) from exc
    return settings.checkpointer_url


def _secret(settings: Settings) -> str:
    try:
        settings.signing_secret  # noqa: B018 - reading it validates it
    except ValueError as exc:
        raise CheckFailedError(str(exc)) from exc
    return "set"


def _graphs(settings: Settings) -> str:
    from graphrelay.orchestrator.registry import load_factory

    try:
        for spec in settings.graphs.values():
            load_factory(spec)
    except (ImportError, ValueError) as exc:
        raise CheckFailedError(f"{exc}; fix GRAPHRELAY_GRAPHS") from exc
    return ", ".join(settings.graphs)


def _api(settings: Settings) -> str:
    health = settings.callback_url.split("/internal/")[0] + "/healthz"
    try:
        httpx.get(health, timeout=2).raise_for_status()
    except httpx.HTTPError as exc:
        raise CheckFailedError(
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
        raise CheckFailedError(f"{what} {folder} is not writable ({exc})") from exc
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
        except CheckFailedError as exc:
            problems[name] = str(exc)
    return problems


def run_checks(settings: Settings, console: Console) -> bool:
    """Run every check, print one line each; True when all pass."""
    console.print(f"profile: [bold]{settings.profile}[/bold]  data: {settings.data_dir}")
    healthy = True
    for name, check in CHECKS:
        try:
            detail = check(settings)
        except CheckFailedError as exc:
            healthy = False
            console.print(f"[red]✗ {name}[/red]: {exc}")
        else:
            console.print(f"[green]✓ {name}[/green]: {detail}")
    return healthy
