"""`python -m graphrelay` runs the CLI."""

from graphrelay.cli import app

app()
