"""JSON error bodies for every 4xx the API gives."""

from __future__ import annotations

from fastapi import HTTPException


def not_found(what: str, ident: str) -> HTTPException:
    """404 for an id that does not exist (or is not the caller's)."""
    return HTTPException(status_code=404, detail=f"{what} {ident} not found")


def conflict(message: str) -> HTTPException:
    """409 when the request clashes with the thread's state."""
    return HTTPException(status_code=409, detail=message)
