"""Settings: one pydantic-settings object, read from `GRAPHRELAY_*` env vars or a TOML file.

Two profiles fill in whatever URL is left unset:
- `embedded` (default): no servers. SQLite checkpoints, ledger and run records, Celery on
  kombu's file-system transport, Celery results in files, all under `data_dir`.
- `production`: RabbitMQ broker; Redis for the ledger, run records, Celery results and
  checkpoints.

Which adapter a URL gives is decided in one place: `graphrelay.backends.open_backends`.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Profile = Literal["embedded", "production"]
# The work queues: a background tool names one, and a worker pool serves one.
WorkQueue = Literal["io", "cpu"]
WORK_QUEUES: tuple[WorkQueue, ...] = ("io", "cpu")

PRODUCTION_DEFAULTS = {
    "broker_url": "amqp://guest:guest@127.0.0.1:5672//",
    "result_backend": "redis://127.0.0.1:6379/0",
    "ledger_url": "redis://127.0.0.1:6379/0",
    "checkpointer_url": "redis://127.0.0.1:6379/0",
}


class Settings(BaseSettings):
    """Everything graphrelay reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="GRAPHRELAY_",
        toml_file=os.environ.get("GRAPHRELAY_CONFIG_FILE", "graphrelay.toml"),
        extra="forbid",
    )

    profile: Profile = "embedded"
    data_dir: Path = Path(".graphrelay")

    broker_url: str = ""
    result_backend: str = ""
    ledger_url: str = ""  # background call records
    runs_url: str = ""  # thread and run records, run leases; Redis also: thread locks, events
    checkpointer_url: str = ""
    key_prefix: str = "graphrelay"
    # A thread untouched this long disappears whole, from every store (Redis only).
    thread_ttl_seconds: float | None = Field(default=None, gt=0)
    checkpoint_ttl_seconds: float | None = Field(default=None, gt=0)  # the older name of it

    api_host: str = "127.0.0.1"
    api_port: int = 8123
    api_workers: int = Field(default=1, ge=1)  # API processes on the port (production only)
    callback_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    api_keys: dict[str, str] = Field(default_factory=dict)  # key → tenant; empty: open API

    graphs: dict[str, str] = Field(
        default_factory=lambda: {"agent": "graphrelay.examples.agent:build_graph"}
    )
    tool_modules: list[str] = Field(default_factory=lambda: ["graphrelay.examples.tools"])
    model: str = "scripted:demo"
    # Plan-and-execute: "" falls back to `model`; a base URL makes the model string the model
    # name on that OpenAI-compatible endpoint.
    planner_model: str = ""
    executor_model: str = ""
    planner_base_url: str = ""
    executor_base_url: str = ""
    model_api_key: SecretStr = SecretStr("")
    plan_max_repairs: int = Field(default=2, ge=0)
    plan_max_replans: int = Field(default=2, ge=0)
    task_max_attempts: int = Field(default=2, ge=1)
    plan_max_parallel: int = Field(default=0, ge=0)  # ready tasks sent at once; 0: all

    io_concurrency: int = 100
    cpu_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1)
    poll_interval: float = 0.02
    callback_max_attempts: int = 10
    callback_backoff_initial: float = 0.5
    callback_backoff_max: float = 30.0
    default_task_timeout: float = 3600.0
    run_lease_seconds: float = 15.0
    max_deliveries: int = Field(default=3, ge=1)  # a call that kills its worker this often
    quorum_queues: bool = False  # declare io/cpu as RabbitMQ quorum queues
    sweeper_period_seconds: float = Field(default=10.0, gt=0)
    sweeper_grace_seconds: float = Field(default=30.0, ge=0)
    sweeper_batch: int = Field(default=500, ge=1)
    sweeper_max_repairs: int = Field(default=5, ge=1)  # failed repairs before a call is parked

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Env vars win over the TOML file."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @model_validator(mode="after")
    def _fill_profile_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        defaults = (
            PRODUCTION_DEFAULTS if self.profile == "production" else self._embedded_defaults()
        )
        for name, value in defaults.items():
            if not getattr(self, name):
                setattr(self, name, value)
        if not self.runs_url:  # production: the run records live beside the ledger
            self.runs_url = self.ledger_url
        if not self.callback_url:
            self.callback_url = f"http://{self.api_host}:{self.api_port}/internal/tasks/callback"
        self._one_thread_ttl()
        return self

    def _one_thread_ttl(self) -> None:
        """`checkpoint_ttl_seconds` is the older name of `thread_ttl_seconds`; both name the
        same lifetime, which every store now honours."""
        old, new = self.checkpoint_ttl_seconds, self.thread_ttl_seconds
        if old is not None and new is not None and old != new:
            raise ValueError(
                f"GRAPHRELAY_CHECKPOINT_TTL_SECONDS ({old}) and GRAPHRELAY_THREAD_TTL_SECONDS "
                f"({new}) differ; the first is the older name of the second: set only "
                "GRAPHRELAY_THREAD_TTL_SECONDS"
            )
        self.thread_ttl_seconds = self.checkpoint_ttl_seconds = new if new is not None else old

    def _embedded_defaults(self) -> dict[str, str]:
        data = self.data_dir
        return {
            "broker_url": "graphrelay-filesystem://",
            "result_backend": f"file://{data / 'celery-results'}",
            "ledger_url": f"sqlite:///{data / 'ledger.sqlite'}",
            "runs_url": f"sqlite:///{data / 'runs.sqlite'}",
            "checkpointer_url": f"sqlite:///{data / 'checkpoints.sqlite'}",
        }

    @property
    def broker_folder(self) -> Path:
        """Where the embedded file-system broker keeps its messages."""
        return self.data_dir / "broker"

    @property
    def index_dir(self) -> Path:
        """Where example tools save the document indexes they build."""
        return self.data_dir / "indexes"

    @cached_property
    def signing_secret(self) -> str:
        """The Standard Webhooks secret (`whsec_...`) shared by the API and the workers."""
        configured = self.webhook_secret.get_secret_value()
        if configured:
            return configured
        if self.profile == "production":
            raise ValueError(
                "GRAPHRELAY_WEBHOOK_SECRET is not set: production needs one secret shared by "
                "the API and every worker; make one with `graphrelay secret`"
            )
        return _embedded_secret(self.data_dir / "webhook-secret")


def new_webhook_secret() -> str:
    """A fresh random secret in the Standard Webhooks `whsec_` form."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _embedded_secret(path: Path) -> str:
    """Read the embedded secret, creating it once; the API and workers race for it safely."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_when_written(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(new_webhook_secret())
    return path.read_text().strip()


def _read_when_written(path: Path) -> str:
    for _ in range(100):
        text = path.read_text().strip()
        if text:
            return text
        time.sleep(0.01)
    raise RuntimeError(f"{path} stays empty; delete it and start again")


def load_settings() -> Settings:
    """Settings from the environment (and `graphrelay.toml` if present)."""
    return Settings()
