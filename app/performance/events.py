"""What the performance evaluator tells the rest: an incident opened, an incident closed.

Plain data. :mod:`app.performance.incidents` hands each one to alerting in the
transaction that opened or closed the incident (the transactional outbox).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class PerformanceDegraded:
    """Enough windows were degraded to open a performance incident."""

    model_id: int
    model_name: str
    at: dt.datetime
    incident_id: int
    severity: str  # "warning" | "critical"
    metric: str
    source: str  # realized | audited | estimated: the estimate that judged
    value: float | None
    ci_low: float | None
    ci_high: float | None
    bound: float | None
    reference: float | None
    rows: int
    window_start: dt.datetime | None
    window_end: dt.datetime | None


@dataclass(frozen=True)
class PerformanceRecovered:
    """Performance has been within its bound long enough: the incident is over."""

    model_id: int
    model_name: str
    at: dt.datetime
    incident_id: int
    metric: str
    value: float | None
    bound: float | None
    opened_at: dt.datetime
