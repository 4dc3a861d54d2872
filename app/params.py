"""Bounded path and query parameters, in one place, so that every route gets the bounds.

An id past what its column holds (``9223372036854775808``; ``2147483648`` for
a PostgreSQL ``INTEGER``) or a duration past what a date can subtract
(``max_age_seconds=1e12``) reached the database or ``datetime`` and came back
as a 500. Routes take their integer and duration parameters from here instead:
an id is bounded by its own column (BIGINT or INTEGER, whichever the
PostgreSQL schema has; SQLite's INTEGER holds either), a duration by
:data:`MAX_SECONDS`, and anything outside is a 422 naming the parameter.
``tests/app/test_params.py`` checks that every integer or number parameter in
the OpenAPI document has both bounds.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from sqlalchemy import BigInteger
from sqlalchemy.orm import InstrumentedAttribute

from app.alerting.tables import Alert, AlertSilence
from app.drift.tables import DriftEvaluation
from exceptions_queue.tables import Ticket

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_SECONDS = 10 * 366 * 86_400.0
"""The longest duration a parameter may give: ten years."""


def id_bound(column: InstrumentedAttribute[int]) -> int:
    """The largest value ``column`` holds on both databases."""
    return INT64_MAX if isinstance(column.type, BigInteger) else INT32_MAX


def id_path(column: InstrumentedAttribute[int], description: str) -> Any:
    """``Path`` metadata for an id of ``column``: ``Annotated[int, id_path(Table.id, "...")]``."""
    return Path(ge=1, le=id_bound(column), description=description)


def id_query(column: InstrumentedAttribute[int], description: str) -> Any:
    """``Query`` metadata for an id of ``column``."""
    return Query(ge=1, le=id_bound(column), description=description)


def seconds_query(description: str) -> Any:
    """``Query`` metadata for a duration in seconds, from 0 to :data:`MAX_SECONDS`."""
    return Query(ge=0, le=MAX_SECONDS, description=f"{description} (seconds, at most ten years)")


# The ids routes take (API and UI alike).
AlertId = Annotated[int, id_path(Alert.id, "The alert's id.")]
SilenceId = Annotated[int, id_path(AlertSilence.id, "The silence's id.")]
TicketId = Annotated[int, id_path(Ticket.id, "The ticket's id.")]
EvaluationId = Annotated[int, id_path(DriftEvaluation.id, "The evaluation's id.")]
EvaluationQuery = Annotated[int, id_query(DriftEvaluation.id, "An evaluation id from GET /drift.")]
