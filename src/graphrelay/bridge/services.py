"""Where a process keeps the bridge's adapters, so tool bodies can find them.

Tool bodies run inside LangGraph and Celery, which call them with fixed signatures; the
process that hosts them (API or worker) installs its adapters here once at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from graphrelay.config import Settings, load_settings
from graphrelay.ports import Ledger, TaskDispatchPort, TaskResumePort


@dataclass
class BridgeServices:
    """The adapters a background tool needs in the orchestrator process."""

    ledger: Ledger
    dispatcher: TaskDispatchPort
    callback_url: str
    default_timeout: float = 3600.0


_installed: BridgeServices | None = None


class BridgeNotConfiguredError(RuntimeError):
    """A background tool ran in a process where no bridge was installed."""


def install(services: BridgeServices | None) -> None:
    """Make `services` the ones tool bodies in this process use (None uninstalls)."""
    global _installed
    _installed = services


def current() -> BridgeServices:
    """The installed services, or a clear error saying how to install them."""
    if _installed is None:
        raise BridgeNotConfiguredError(
            "no graphrelay bridge is installed in this process: run graphs through "
            "`graphrelay serve` or call graphrelay.bridge.services.install(...) first"
        )
    return _installed


@dataclass
class WorkerServices:
    """The adapters a worker process needs to run a task and report it."""

    ledger: Ledger
    notifier: TaskResumePort
    max_deliveries: int = 3


@cache
def worker_services() -> WorkerServices:
    """Built once per worker process from its settings."""
    from graphrelay.bridge.callback import WebhookNotifier
    from graphrelay.bridge.ledger import open_ledger

    settings: Settings = load_settings()
    return WorkerServices(
        ledger=open_ledger(settings.ledger_url, settings.key_prefix),
        notifier=WebhookNotifier(
            settings.signing_secret,
            max_attempts=settings.callback_max_attempts,
            initial_backoff=settings.callback_backoff_initial,
            max_backoff=settings.callback_backoff_max,
        ),
        max_deliveries=settings.max_deliveries,
    )
