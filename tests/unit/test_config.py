"""Settings: profile defaults, overrides and the shared webhook secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrelay.config import Settings


def test_embedded_profile_needs_no_servers(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)

    assert settings.profile == "embedded"
    assert settings.broker_url == "graphrelay-filesystem://"
    assert settings.ledger_url == f"sqlite:///{tmp_path}/ledger.sqlite"
    assert settings.checkpointer_url == f"sqlite:///{tmp_path}/checkpoints.sqlite"
    assert settings.callback_url == "http://127.0.0.1:8123/internal/tasks/callback"


def test_production_profile_uses_rabbitmq_and_redis(tmp_path: Path) -> None:
    settings = Settings(profile="production", data_dir=tmp_path)

    assert settings.broker_url.startswith("amqp://")
    assert settings.ledger_url.startswith("redis://")
    assert settings.result_backend.startswith("redis://")
    assert settings.checkpointer_url.startswith("redis://")


def test_env_vars_override_profile_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHRELAY_PROFILE", "production")
    monkeypatch.setenv("GRAPHRELAY_LEDGER_URL", "redis://127.0.0.1:6379/5")
    monkeypatch.setenv("GRAPHRELAY_TOOL_MODULES", '["a.b", "c.d"]')

    settings = Settings()

    assert settings.ledger_url == "redis://127.0.0.1:6379/5"
    assert settings.tool_modules == ["a.b", "c.d"]


def test_production_without_a_secret_says_how_to_make_one(tmp_path: Path) -> None:
    settings = Settings(profile="production", data_dir=tmp_path)
    with pytest.raises(ValueError, match="graphrelay secret"):
        _ = settings.signing_secret


def test_embedded_secret_is_created_once_and_shared(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).signing_secret
    second = Settings(data_dir=tmp_path).signing_secret

    assert first == second
    assert first.startswith("whsec_")
    assert (tmp_path / "webhook-secret").stat().st_mode & 0o077 == 0


def test_unknown_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="profile"):
        Settings(profile="staging")  # type: ignore[arg-type]
