"""Every statement the workforce view runs: reads of tickets, their events and volumes.

Read-only and bounded by time: the forecast runs on every alert-rules tick, so
each read covers a recent span (the last day, or the weeks of the
hour-of-week profile read from the hourly ``ticket_volume`` counters, never
from the raw tickets).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from exceptions_queue.sampling import BUDGETED
from exceptions_queue.tables import Ticket, TicketEvent, TicketVolume
from storage.tables import MonitoredModel

T = Ticket.__table__
E = TicketEvent.__table__
V = TicketVolume.__table__


@dataclass(frozen=True)
class Finished:
    model_id: int
    kind: str
    reviewer: str
    claimed_at: dt.datetime | None
    finished_at: dt.datetime


@dataclass(frozen=True)
class Active:
    model_id: int
    kind: str
    status: str
    priority: int
    created_at: dt.datetime
    due_at: dt.datetime


def model_ids(session: Session, *, names: list[str] | None = None) -> dict[int, str]:
    """Active models' ids and names (only those named, when ``names`` is given)."""
    stmt = select(MonitoredModel.id, MonitoredModel.name).where(MonitoredModel.status == "active")
    if names is not None:
        stmt = stmt.where(MonitoredModel.name.in_(names))
    return {int(i): str(n) for i, n in session.execute(stmt)}


def hourly_opened(
    session: Session, *, since: dt.datetime
) -> list[tuple[int, str, dt.datetime, int]]:
    """(model id, kind, hour, tickets opened) from the hourly counters since ``since``
    (their partial rows summed)."""
    stmt = (
        select(V.c.model_id, V.c.kind, V.c.hour, func.sum(V.c.opened))
        .where(V.c.hour >= since)
        .group_by(V.c.model_id, V.c.kind, V.c.hour)
    )
    return [(int(m), str(k), h, int(n)) for m, k, h, n in session.execute(stmt)]


def budgeted_volume(
    session: Session, *, model_id: int, since: dt.datetime, until: dt.datetime
) -> tuple[int, int]:
    """(considered, drawn) flagged records of a model's label budget between the two hours."""
    stmt = select(
        func.coalesce(func.sum(V.c.opened + V.c.suppressed), 0),
        func.coalesce(func.sum(V.c.opened), 0),
    ).where(
        V.c.model_id == model_id,
        V.c.hour >= since,
        V.c.hour < until,
        V.c.kind.in_(BUDGETED),
    )
    considered, drawn = session.execute(stmt).one()
    return int(considered), int(drawn)


def first_volume_hour(session: Session) -> dict[int, dt.datetime]:
    """The first hour each model opened any ticket: how much history the profile has."""
    stmt = select(V.c.model_id, func.min(V.c.hour)).group_by(V.c.model_id)
    return {int(m): h for m, h in session.execute(stmt) if h is not None}


def created_times_since(
    session: Session, *, since: dt.datetime
) -> list[tuple[int, str, dt.datetime]]:
    """(model id, kind, created at) of every ticket created since ``since``: the recent rate."""
    stmt = select(T.c.model_id, T.c.kind, T.c.created_at).where(T.c.created_at >= since)
    return [(int(m), str(k), c) for m, k, c in session.execute(stmt)]


def finished_since(session: Session, *, since: dt.datetime) -> list[Finished]:
    """Tickets resolved or dismissed since ``since``, with their (last) claim time."""
    stmt = select(
        T.c.model_id, T.c.kind, T.c.resolved_by_name, T.c.claimed_at, T.c.resolved_at
    ).where(
        T.c.resolved_at >= since,
        T.c.status.in_(("resolved", "dismissed")),
        T.c.resolved_by_name.is_not(None),
    )
    return [
        Finished(int(m), str(k), str(r), c, f)
        for m, k, r, c, f in session.execute(stmt)
        if f is not None
    ]


def active_tickets(session: Session) -> list[Active]:
    """Every ticket waiting (open) or held (claimed), with its priority and due time."""
    stmt = select(
        T.c.model_id, T.c.kind, T.c.status, T.c.priority, T.c.created_at, T.c.due_at
    ).where(T.c.status.in_(("open", "claimed")))
    return [
        Active(int(m), str(k), str(s), int(p), c, d) for m, k, s, p, c, d in session.execute(stmt)
    ]


def active_reviewers(session: Session, *, since: dt.datetime) -> list[tuple[str, int]]:
    """Reviewers who claimed or finished a ticket since ``since``, with a model they worked on."""
    held = select(T.c.claimed_by_name, T.c.model_id).where(
        T.c.status == "claimed", T.c.claimed_at >= since, T.c.claimed_by_name.is_not(None)
    )
    done = select(T.c.resolved_by_name, T.c.model_id).where(
        T.c.resolved_at >= since, T.c.resolved_by_name.is_not(None)
    )
    rows = session.execute(held.union(done))
    return [(str(r), int(m)) for r, m in rows]


def first_claims(
    session: Session, *, since: dt.datetime
) -> list[tuple[int, str, dt.datetime, dt.datetime]]:
    """(model id, kind, created, first claim) of tickets created since ``since`` and claimed."""
    first = (
        select(E.c.ticket_id, func.min(E.c.at).label("first_claim"))
        .where(E.c.action == "claim")
        .group_by(E.c.ticket_id)
        .subquery()
    )
    stmt = (
        select(T.c.model_id, T.c.kind, T.c.created_at, first.c.first_claim)
        .join(first, first.c.ticket_id == T.c.id)
        .where(T.c.created_at >= since)
    )
    return [(int(m), str(k), c, f) for m, k, c, f in session.execute(stmt)]


def agreement(session: Session, *, since: dt.datetime) -> list[tuple[str, int, int]]:
    """(reviewer, second reviews that agreed, second reviews) of labels finished since ``since``."""
    review = aliased(Ticket)
    subject = aliased(Ticket)
    agreed = func.sum(func.cast(review.qc_agreed, Ticket.count.type))
    stmt = (
        select(subject.resolved_by_name, agreed, func.count())
        .select_from(review)
        .join(subject, and_(subject.id == review.subject_ticket_id))
        .where(
            review.kind == "second_review",
            review.qc_agreed.is_not(None),
            review.resolved_at >= since,
            subject.resolved_by_name.is_not(None),
        )
        .group_by(subject.resolved_by_name)
    )
    return [(str(r), int(a or 0), int(n)) for r, a, n in session.execute(stmt)]
