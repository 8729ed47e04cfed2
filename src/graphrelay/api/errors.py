"""JSON error bodies for every 4xx the API gives."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Every 4xx body: what went wrong, as text or as a list of validation errors."""

    detail: str | list[Any]


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error codes a router may answer."""
    return {code: {"model": ErrorBody} for code in codes}


def bad_request(message: str) -> HTTPException:
    """400 for a request the API cannot act on as sent."""
    return HTTPException(status_code=400, detail=message)


def not_found(what: str, ident: str) -> HTTPException:
    """404 for an id that does not exist (or is not the caller's)."""
    return HTTPException(status_code=404, detail=f"{what} {ident} not found")


def conflict(message: str) -> HTTPException:
    """409 when the request clashes with the thread's state."""
    return HTTPException(status_code=409, detail=message)
