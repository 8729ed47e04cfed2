"""The CLI: doctor's one-line diagnoses, worker command lines, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_openai import ChatOpenAI
from typer.testing import CliRunner

from graphrelay.cli.app import app
from graphrelay.config import Settings
from graphrelay.graphs.chat_models import load_chat_model
from graphrelay.graphs.scripted import ScriptedChatModel
from graphrelay.runtime.launch import worker_argv
from graphrelay.testing.processes import free_port

runner = CliRunner()


def test_doctor_on_embedded_says_the_api_is_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHRELAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHRELAY_API_PORT", str(free_port()))

    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 1
    for healthy in ("✓ broker", "✓ results", "✓ ledger", "✓ checkpoints", "✓ graphs"):
        assert healthy in result.output
    assert "✗ api" in result.output
    assert "graphrelay serve" in result.output


def test_doctor_names_an_unreachable_broker_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHRELAY_PROFILE", "production")
    monkeypatch.setenv("GRAPHRELAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHRELAY_BROKER_URL", f"amqp://guest:guest@127.0.0.1:{free_port()}//")

    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 1
    assert "✗ broker" in result.output
    assert "rabbitmq-server" in result.output
    assert "✗ webhook secret" in result.output


def test_bad_settings_exit_2_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHRELAY_PROFILE", "staging")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 2
    assert "invalid settings" in result.output


def test_an_unknown_crash_point_exits_2_naming_the_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRAPHRELAY_CRASH_AT", "after_publsh")
    result = runner.invoke(app, ["sweeper", "--once"])
    assert result.exit_code == 2
    assert "unknown crash points ['after_publsh']" in result.output
    assert "after_publish" in result.output


def test_several_api_workers_need_the_production_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GRAPHRELAY_API_WORKERS", "2")
    monkeypatch.setenv("GRAPHRELAY_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "api_workers > 1 needs the production profile" in result.output


def test_worker_refuses_an_unknown_pool() -> None:
    result = runner.invoke(app, ["worker", "--pool", "gpu"])
    assert result.exit_code == 2
    assert "--pool must be io or cpu" in result.output


def test_worker_pools_are_configured_as_designed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, io_concurrency=200, cpu_concurrency=3)

    io = worker_argv("io", settings)
    cpu = worker_argv("cpu", settings)

    assert io[io.index("--pool") + 1] == "gevent"
    assert io[io.index("--concurrency") + 1] == "200"
    assert io[io.index("--queues") + 1] == "io"
    assert cpu[cpu.index("--pool") + 1] == "prefork"
    assert cpu[cpu.index("--concurrency") + 1] == "3"
    assert cpu[cpu.index("--prefetch-multiplier") + 1] == "1"


def test_secret_prints_a_standard_webhooks_secret() -> None:
    result = runner.invoke(app, ["secret"])
    assert result.exit_code == 0
    assert result.output.startswith("whsec_")


def test_models_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert isinstance(load_chat_model("openai:gpt-4.1-mini"), ChatOpenAI)
    assert isinstance(load_chat_model("scripted:demo"), ScriptedChatModel)
