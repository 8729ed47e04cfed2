"""`graphrelay doctor`: checks each configured service and says how to fix what is wrong."""

from __future__ import annotations

from rich.console import Console

from graphrelay.config import Settings
from graphrelay.errors import HealthCheckError
from graphrelay.runtime.health import CHECKS


def run_checks(settings: Settings, console: Console) -> bool:
    """Run every check, print one line each; True when all pass."""
    console.print(f"profile: [bold]{settings.profile}[/bold]  data: {settings.data_dir}")
    healthy = True
    for name, check in CHECKS:
        try:
            detail = check(settings)
        except HealthCheckError as exc:
            healthy = False
            console.print(f"[red]✗ {name}[/red]: {exc}")
        else:
            console.print(f"[green]✓ {name}[/green]: {detail}")
    return healthy
