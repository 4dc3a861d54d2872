"""Opaque cursors for keyset pagination (``limit`` + ``cursor`` → ``next_cursor``)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Annotated, Any

import orjson
from fastapi import Query

from app.errors import ValidationFailed

LimitQuery = Annotated[int, Query(ge=1, le=1000, description="Page size (max 1000).")]
CursorQuery = Annotated[str | None, Query(description="The `next_cursor` of the previous page.")]


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ValidationFailed.at(
            ["query", "cursor"], "invalid cursor: pass the next_cursor of a previous page unchanged"
        )
    return value


def cursor_position(after: dict[str, Any]) -> tuple[dt.datetime, int]:
    """A ``(timestamp, id)`` keyset position from a decoded cursor."""
    try:
        return dt.datetime.fromisoformat(after["ts"]), int(after["id"])
    except (KeyError, TypeError, ValueError):
        raise ValidationFailed.at(
            ["query", "cursor"], "invalid cursor: pass the next_cursor of a previous page unchanged"
        ) from None
