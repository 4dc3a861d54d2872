"""Workforce gauges for /metrics, computed at scrape time from one forecast per scrape."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session

from app.ops.metrics import Sample
from app.settings import get_settings
from app.workforce import service
from app.workforce.schemas import Workforce
from storage.base import utcnow

# The collectors of one scrape share one forecast (it runs a small simulation).
_CACHE_SECONDS = 2.0
_lock = threading.Lock()
_cached: tuple[float, str, Workforce] | None = None


def _current(session: Session) -> Workforce:
    global _cached
    database = session.get_bind().engine.url.render_as_string()
    with _lock:
        if _cached and _cached[1] == database and time.monotonic() - _cached[0] < _CACHE_SECONDS:
            return _cached[2]
    w = service.workforce(session, now=utcnow(), settings=get_settings(), band_runs=100)
    with _lock:
        _cached = (time.monotonic(), database, w)
    return w


def active_reviewers(session: Session) -> tuple[str, str, list[Sample]]:
    name = "driftdesk_workforce_active_reviewers"
    w = _current(session)
    return (
        name,
        "Reviewers who claimed or finished a ticket recently.",
        [(name, {}, float(w.active_reviewers))],
    )


def arrivals(session: Session) -> tuple[str, str, list[Sample]]:
    name = "driftdesk_workforce_arrivals_per_hour"
    samples: list[Sample] = [
        (name, {"model": a.model, "kind": a.kind}, a.per_hour) for a in _current(session).arrivals
    ]
    return name, "Expected ticket arrivals this hour, per model and kind.", samples


def handle_time(session: Session) -> tuple[str, str, list[Sample]]:
    name = "driftdesk_workforce_handle_seconds_median"
    samples: list[Sample] = [
        (name, {"kind": h.kind}, h.median_seconds)
        for h in _current(session).handle_times
        if h.median_seconds is not None
    ]
    return name, "Median claim-to-finish time over the last 24 h, per kind.", samples


def reviewers_needed(session: Session) -> tuple[str, str, list[Sample]]:
    name = "driftdesk_workforce_reviewers_needed"
    f = _current(session).forecast
    samples: list[Sample] = [] if f is None else [(name, {}, float(f.reviewers_needed_now))]
    return name, "Reviewers needed now to keep every ticket within its SLA.", samples


def backlog_forecast(session: Session) -> tuple[str, str, list[Sample]]:
    name = "driftdesk_workforce_backlog_forecast"
    f = _current(session).forecast
    samples: list[Sample] = []
    if f is not None:
        for b in f.backlog:
            samples.append((name, {"hours": f"{b.hours:g}", "bound": "expected"}, b.expected))
            samples.append((name, {"hours": f"{b.hours:g}", "bound": "low"}, b.low))
            samples.append((name, {"hours": f"{b.hours:g}", "bound": "high"}, b.high))
    return (
        name,
        "Waiting tickets forecast at current staffing (10th-90th percentile band).",
        samples,
    )


def breach_in(session: Session) -> tuple[str, str, list[Sample]]:
    name = "driftdesk_workforce_breach_in_seconds"
    f = _current(session).forecast
    samples: list[Sample] = []
    if f is not None:
        for p in f.breaches_by_priority:
            if p.in_minutes is not None:
                samples.append((name, {"priority": str(p.priority)}, p.in_minutes * 60))
    return (
        name,
        "Seconds until the first ticket of each priority breaches its SLA (forecast).",
        samples,
    )


COLLECTORS = (
    active_reviewers,
    arrivals,
    handle_time,
    reviewers_needed,
    backlog_forecast,
    breach_in,
)
