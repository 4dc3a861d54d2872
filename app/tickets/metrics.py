"""Queue figures for /metrics, read from the database at scrape time."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.catalog.service import model_names
from app.ops.metrics import Sample
from exceptions_queue import repository
from storage.base import utcnow


def tickets(session: Session) -> tuple[str, str, list[Sample]]:
    counts = repository.queue_counts(session, now=utcnow())
    names = model_names(session, (m for m, *_ in counts))
    return (
        "driftdesk_tickets",
        "Tickets waiting (open) or held (claimed), per model and kind.",
        [
            ("driftdesk_tickets", {"model": names.get(m, str(m)), "kind": k, "status": s}, n)
            for m, k, s, n, _, _ in counts
        ],
    )


def overdue(session: Session) -> tuple[str, str, list[Sample]]:
    counts = repository.queue_counts(session, now=utcnow())
    names = model_names(session, (m for m, *_ in counts))
    totals: dict[tuple[str, str], int] = {}
    for m, k, _, _, late, _ in counts:
        key = (names.get(m, str(m)), k)
        totals[key] = totals.get(key, 0) + late
    return (
        "driftdesk_tickets_overdue",
        "Waiting or held tickets past their SLA due time, per model and kind.",
        [
            ("driftdesk_tickets_overdue", {"model": m, "kind": k}, n)
            for (m, k), n in sorted(totals.items())
        ],
    )


def oldest_open(session: Session) -> tuple[str, str, list[Sample]]:
    now = utcnow()
    counts = repository.queue_counts(session, now=now)
    names = model_names(session, (m for m, *_ in counts))
    oldest: dict[str, dt.datetime] = {}
    for m, _, status, _, _, first in counts:
        name = names.get(m, str(m))
        if status == "open" and first is not None and (name not in oldest or first < oldest[name]):
            oldest[name] = first
    return (
        "driftdesk_tickets_oldest_open_age_seconds",
        "Age of the oldest open ticket, per model.",
        [
            ("driftdesk_tickets_oldest_open_age_seconds", {"model": m}, (now - t).total_seconds())
            for m, t in sorted(oldest.items())
        ],
    )


def finished_last_hour(session: Session) -> tuple[str, str, list[Sample]]:
    rows = repository.finished_by_reviewer(session, since=utcnow() - dt.timedelta(hours=1))
    return (
        "driftdesk_tickets_finished_last_hour",
        "Tickets resolved or dismissed in the last hour, per reviewer.",
        [
            ("driftdesk_tickets_finished_last_hour", {"reviewer": r, "status": s}, n)
            for r, s, n in sorted(rows)
        ],
    )


def suppressed(session: Session) -> tuple[str, str, list[Sample]]:
    rows = repository.suppressed_totals(session)
    names = model_names(session, (m for m, *_ in rows))
    return (
        "driftdesk_tickets_suppressed",
        "Tickets not opened because the model's hourly budget was spent, per model and kind.",
        [
            ("driftdesk_tickets_suppressed", {"model": names.get(m, str(m)), "kind": k}, n)
            for m, k, n in sorted(rows)
        ],
    )


COLLECTORS = (tickets, overdue, oldest_open, finished_last_hour, suppressed)
