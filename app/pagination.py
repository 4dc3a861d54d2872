"""Opaque cursors for keyset pagination (``limit`` + ``cursor`` → ``next_cursor``)."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

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


T = TypeVar("T")
R = TypeVar("R")

_INVALID = "invalid cursor: pass the next_cursor of a previous page of this list unchanged"


def cursor_field(cursor: str | None, field: str, kind: type[T]) -> T | None:
    """The keyset position ``field`` of a cursor, checked to be a ``kind``.

    A cursor of another list (or a forged one) is a 422 naming the cursor, never
    a 500 or a silently wrong comparison.
    """
    after = decode_cursor(cursor)
    if after is None:
        return None
    value = after.get(field)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValidationFailed.at(["query", "cursor"], _INVALID)
    return value


def page(
    rows: Sequence[R], limit: int, position: Callable[[R], dict[str, Any]]
) -> tuple[list[R], str | None]:
    """Cut ``limit + 1`` fetched rows to a page and the cursor of the next one."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return items, encode_cursor(position(items[-1])) if more else None


def cursor_position(after: dict[str, Any]) -> tuple[dt.datetime, int]:
    """A ``(timestamp, id)`` keyset position from a decoded cursor."""
    try:
        ts, last_id = dt.datetime.fromisoformat(after["ts"]), int(after["id"])
    except (KeyError, TypeError, ValueError):
        raise ValidationFailed.at(["query", "cursor"], _INVALID) from None
    if ts.tzinfo is None:  # forged: the UTC columns refuse a naive time
        raise ValidationFailed.at(["query", "cursor"], _INVALID)
    return ts, last_id
