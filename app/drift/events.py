"""What the drift engine tells the rest: an incident opened, an incident closed.

Plain data. :mod:`app.drift.flows` hands each one, in the transaction that
opened or closed the incident, to the queue (a drift ticket) and to alerting
(an outbox row), so all of it is committed or none (the transactional outbox).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


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
