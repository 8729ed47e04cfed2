"""The `graphrelay` command (`cli/app.py`): serve | worker | sweeper | demo | doctor | secret."""

from graphrelay.cli.app import app

__all__ = ["app"]
