"""Domain events, handled inside the transaction that raised them.

A drift incident opening is one event; the queue turns it into a drift ticket
and alerting into an outbox row, each in the same transaction as the incident
itself, so either all of it is committed or none (the transactional outbox).
Handlers register with :func:`subscribe`; modules that hold handlers are listed
in :mod:`app.handlers`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Event:
    """Base of every domain event."""

    model_id: int
    model_name: str
    at: dt.datetime


@dataclass(frozen=True)
class IncidentOpened(Event):
    """Drift was found often enough to open an incident."""

    incident_id: int
    evaluation_id: int
    severity: str  # "warning" | "critical"
    drifted_features: tuple[str, ...]
    # window the incident was opened on, and its evaluation as API.md shows it
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    evaluation: dict[str, Any] = field(default_factory=dict)
    # predictions of that window worth a human label: lowest confidence and most
    # out-of-reference first
    sample_prediction_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class IncidentClosed(Event):
    """Drift has been absent long enough: the incident is over."""

    incident_id: int
    evaluation_id: int
    opened_at: dt.datetime


E = TypeVar("E", bound=Event)
Handler = Callable[[Session, Any], None]
_handlers: dict[type[Event], list[Handler]] = defaultdict(list)
_loaded = False


def subscribe(
    event_type: type[E],
) -> Callable[[Callable[[Session, E], None]], Callable[[Session, E], None]]:
    """Register a handler for ``event_type`` (a decorator)."""

    def register(handler: Callable[[Session, E], None]) -> Callable[[Session, E], None]:
        _handlers[event_type].append(handler)
        return handler

    return register


def publish(session: Session, event: Event) -> None:
    """Run every handler of ``event`` now, in ``session``'s transaction."""
    global _loaded
    if not _loaded:
        import app.handlers  # noqa: F401  (registers the handlers)

        _loaded = True
    for handler in _handlers[type(event)]:
        handler(session, event)


@dataclass(frozen=True)
class RetrainingDataReady(Event):
    """Enough new human labels have accumulated for a model to be worth retraining on."""

    new_labels: int  # labels since the last time this was raised
    total_labels: int
    since: dt.datetime | None  # when it was last raised (None: the first time)
    export_path: str  # GET this (with ?since=) for the labels
