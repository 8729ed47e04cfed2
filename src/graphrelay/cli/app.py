"""The `graphrelay` command: serve | worker | sweeper | demo | doctor | secret."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from graphrelay.config import WORK_QUEUES, Settings, load_settings, new_webhook_secret
from graphrelay.errors import DemoError, UnknownCrashPointError
from graphrelay.testing.crash import armed

app = typer.Typer(help="graphrelay: LangGraph agents whose slow tools run on Celery workers.")
console = Console(stderr=True)


def _settings() -> Settings:
    try:
        armed()  # a misspelt crash point should stop a fault test at once, not pass silently
        return load_settings()
    except UnknownCrashPointError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    except (ValidationError, ValueError) as exc:
        console.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: settings)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings)")] = None,
    log_level: str = "info",
) -> None:
    """Run the orchestrator API."""
    import uvicorn

    from graphrelay.runtime.api import create_app

    settings = _settings()
    host, port = host or settings.api_host, port or settings.api_port
    if settings.api_workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
        return
    if settings.profile != "production":
        console.print(
            "[red]api_workers > 1 needs the production profile:[/red] the processes share "
            "runs, leases and thread locks through Redis; embedded keeps them per process"
        )
        raise typer.Exit(2)
    # Replicas in one place: uvicorn starts the processes on one socket; each builds its
    # app from the environment and runs like any other replica.
    uvicorn.run(
        "graphrelay.runtime.api:create_app",
        factory=True,
        workers=settings.api_workers,
        host=host,
        port=port,
        log_level=log_level,
    )


@app.command()
def worker(
    pool: Annotated[str, typer.Option(help="io (gevent, many greenlets) or cpu (prefork)")] = "io",
    loglevel: str = "info",
) -> None:
    """Run a Celery worker for the io or cpu queue."""
    from graphrelay.runtime.launch import exec_worker

    chosen = next((queue for queue in WORK_QUEUES if queue == pool), None)
    if chosen is None:
        console.print(f"[red]--pool must be {' or '.join(WORK_QUEUES)}, not {pool!r}[/red]")
        raise typer.Exit(2)
    exec_worker(chosen, _settings(), loglevel)


@app.command()
def sweeper(
    once: Annotated[bool, typer.Option(help="Sweep one round and exit")] = False,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port")
    ] = None,
) -> None:
    """Repair what crashes left behind: unpublished calls, lost callbacks, dead runs."""
    import asyncio
    import logging

    from graphrelay.runtime.sweeper import serve_metrics, sweep

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = _settings()
    if metrics_port is not None:
        serve_metrics(metrics_port)
    console.print(
        f"sweeper: every {settings.sweeper_period_seconds} s" if not once else "sweeper: one round"
    )
    asyncio.run(sweep(settings, once=once, on_round=_print_round))


def _print_round(done: Counter[str]) -> None:
    if done.total():
        console.print("sweep: " + ", ".join(f"{kind} {n}" for kind, n in sorted(done.items())))


@app.command()
def demo(
    docs: Annotated[Path, typer.Option(help="Folder of documents to index")] = Path("docs"),
    question: str = "Index our docs and tell me how a suspended agent is resumed.",
    keep_data: Annotated[bool, typer.Option(help="Keep the demo's data folder")] = False,
) -> None:
    """Run the example agent end to end with no servers: API and workers as child processes."""
    from graphrelay.cli.demo import run_demo

    try:
        run_demo(docs, question, keep_data=keep_data)
    except DemoError as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def doctor() -> None:
    """Check every configured service; one line each, with the fix for what is wrong."""
    from graphrelay.cli.doctor import run_checks

    if not run_checks(_settings(), Console()):
        raise typer.Exit(1)


@app.command()
def secret() -> None:
    """Print a new webhook secret for GRAPHRELAY_WEBHOOK_SECRET."""
    typer.echo(new_webhook_secret())
