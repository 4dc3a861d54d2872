"""Tickets as the API shows them: with their model's name, age, SLA, predictions, history."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select
from sqlalchemy.orm import Session

from app.catalog.service import model_names
from app.ingest.endpoints import prediction_out
from app.tickets.schemas import (
    Agreement,
    ClaimedTicket,
    EventOut,
    KindCount,
    LabelOut,
    QueueSummary,
    ReviewerThroughput,
    Suppressed,
    TicketDetail,
    TicketOut,
)
from exceptions_queue import repository, service, states
from exceptions_queue.tables import Label, Ticket
from storage.tables import Prediction


def _client_ids(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if len(wanted) == 1:  # usually loaded already in this session: no query then
        [one] = wanted
        p = session.get(Prediction, one)
        return {one: p.client_id} if p is not None else {}
    if not wanted:
        return {}
    rows = session.execute(
        select(Prediction.id, Prediction.client_id).where(Prediction.id.in_(wanted))
    )
    return {int(i): str(c) for i, c in rows}


def _out(t: Ticket, *, names: dict[int, str], now: dt.datetime) -> TicketOut:
    return TicketOut(**_fields(t, names=names, now=now))


def _fields(t: Ticket, *, names: dict[int, str], now: dt.datetime) -> dict[str, Any]:
    """A ticket's fields as :class:`TicketOut` (and the classes extending it) take them."""
    return {
        "id": t.id,
        "model": names.get(t.model_id, str(t.model_id)),
        "kind": t.kind,
        "status": t.status,
        "priority": t.priority,
        "escalated": states.is_escalated(t.abandon_count),
        "abandon_count": t.abandon_count,
        "reason": t.reason,
        "details": t.details,
        "count": t.count,
        "inclusion_probability": t.inclusion_probability,
        "sampling_stratum": t.sampling_stratum,
        "prediction_id": t.client_id if t.prediction_id else None,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "age_seconds": round((now - t.created_at).total_seconds(), 3),
        "due_at": t.due_at,
        "overdue": t.status in states.ACTIVE and t.due_at < now,
        "claimed_by": t.claimed_by_name,
        "claimed_at": t.claimed_at,
        "lease_expires_at": t.lease_expires_at,
        "last_abandoned_by": t.last_abandoned_by,
        "resolved_by": t.resolved_by_name,
        "resolved_at": t.resolved_at,
        "resolution": t.resolution,
        "subject_ticket_id": t.subject_ticket_id,
        "qc_agreed": t.qc_agreed,
    }


def tickets_out(
    session: Session, tickets: Sequence[Ticket], *, now: dt.datetime
) -> list[TicketOut]:
    names = model_names(session, (t.model_id for t in tickets))
    return [_out(t, names=names, now=now) for t in tickets]


def ticket_out(session: Session, ticket: Ticket, *, now: dt.datetime) -> TicketOut:
    return tickets_out(session, [ticket], now=now)[0]


# Rows, not entities: the claim's view reads them once (an entity costs its
# identity-map bookkeeping on the queue's hottest path).
_P = cast(Table, Prediction.__table__).c
_PREDICTIONS = select(
    _P.id,
    _P.client_id,
    _P.ts,
    _P.received_at,
    _P.features,
    _P.prediction,
    _P.confidence,
    _P.probabilities,
    _P.model_version,
    _P.actual,
).where(_P.id.in_(bindparam("ids", expanding=True)))


def _predictions(session: Session, ticket: Ticket) -> list[Row[*tuple[Any, ...]]]:
    """The ticket's predictions (rows of ``_PREDICTIONS``), in the ticket's order."""
    ids = [ticket.prediction_id] if ticket.prediction_id else list(ticket.prediction_ids)
    if not ids:
        return []
    rows = {r.id: r for r in session.execute(_PREDICTIONS, {"ids": ids})}
    return [rows[i] for i in ids if i in rows]


def claimed_out(session: Session, ticket: Ticket, *, now: dt.datetime) -> ClaimedTicket:
    """The holder's view: the ticket, its lease token and what to label."""
    assert ticket.lease_token is not None
    predictions = _predictions(session, ticket)
    return ClaimedTicket(
        **_fields(ticket, names=model_names(session, [ticket.model_id]), now=now),
        lease_token=ticket.lease_token,
        predictions=[prediction_out(p) for p in predictions],
    )


def _label_out(label: Label, client_ids: dict[int, str]) -> LabelOut:
    return LabelOut(
        id=label.id,
        prediction_id=client_ids.get(label.prediction_id) if label.prediction_id else None,
        label=label.label,
        note=label.note,
        source=label.source,
        status=label.status,
        labelled_by=label.labelled_by_name,
        labelled_at=label.labelled_at,
        superseded_by=label.superseded_by,
    )


def ticket_detail(session: Session, ticket: Ticket, *, now: dt.datetime) -> TicketDetail:
    """Everything about a ticket: its predictions, labels and full event history."""
    predictions = _predictions(session, ticket)
    labels = repository.labels_of(session, ticket.id)
    client_ids = {p.id: p.client_id for p in predictions}
    client_ids |= _client_ids(
        session, (lab.prediction_id for lab in labels if lab.prediction_id not in client_ids)
    )
    return TicketDetail(
        **_fields(ticket, names=model_names(session, [ticket.model_id]), now=now),
        predictions=[prediction_out(p) for p in predictions],
        labels=[_label_out(lab, client_ids) for lab in labels],
        events=[
            EventOut(
                id=e.id,
                action=e.action,
                actor=e.actor,
                from_status=e.from_status,
                to_status=e.to_status,
                at=e.at,
                payload=e.payload,
            )
            for e in repository.events_of(session, ticket.id)
        ],
    )


def _agreement(rows: dict[str, list[int]]) -> list[Agreement]:
    return [
        Agreement(name=name, reviews=n, agreed=ok, rate=round(ok / n, 4) if n else None)
        for name, (n, ok) in sorted(rows.items())
    ]


def summary(
    session: Session, *, now: dt.datetime, model_id: int | None = None, hours: int = 24
) -> QueueSummary:
    """Queue depth, age and SLA, throughput per reviewer, suppressed counts, QC agreement."""
    counts = repository.queue_counts(session, now=now, model_id=model_id)
    suppressed = repository.suppressed_counts(
        session, since=service.hour_of(now) - dt.timedelta(hours=hours - 1), model_id=model_id
    )
    pairs = repository.qc_pairs(session, model_id=model_id)
    names = model_names(
        session, [m for m, *_ in counts] + [m for m, *_ in suppressed] + [m for m, *_ in pairs]
    )
    queues, oldest_open = _queues(counts, names, now)
    ordered = sorted(queues, key=lambda q: (q.model, -states.priority_of(q.kind)))
    by_model, by_reviewer = _agreement_counts(pairs, names)
    return QueueSummary(
        open=sum(q.open for q in ordered),
        claimed=sum(q.claimed for q in ordered),
        overdue=sum(q.overdue for q in ordered),
        oldest_open_age_seconds=(
            round((now - oldest_open).total_seconds(), 3) if oldest_open else None
        ),
        queues=ordered,
        finished_last_hour=_finished_last_hour(session, now=now, model_id=model_id),
        suppressed_total=sum(n for *_, n in suppressed),
        suppressed=[
            Suppressed(model=names.get(m, str(m)), kind=k, hour=h, count=n)
            for m, k, h, n in suppressed
        ],
        agreement_by_model=_agreement(by_model),
        agreement_by_reviewer=_agreement(by_reviewer),
    )


def _queues(
    counts: Sequence[Any], names: dict[int, str], now: dt.datetime
) -> tuple[list[KindCount], dt.datetime | None]:
    """One row per model and kind (open, held, overdue, oldest open age), and the
    oldest open ticket's creation time over all of them."""
    queues: dict[tuple[int, str], KindCount] = {}
    oldest_open: dt.datetime | None = None
    for m, kind, status, n, overdue, oldest in counts:
        q = queues.setdefault(
            (m, kind),
            KindCount(
                model=names.get(m, str(m)),
                kind=kind,
                open=0,
                claimed=0,
                overdue=0,
                oldest_open_age_seconds=None,
            ),
        )
        q.overdue += overdue
        if status == "open":
            q.open = n
            q.oldest_open_age_seconds = round((now - oldest).total_seconds(), 3) if oldest else None
            if oldest is not None and (oldest_open is None or oldest < oldest_open):
                oldest_open = oldest
        else:
            q.claimed = n
    return list(queues.values()), oldest_open


def _finished_last_hour(
    session: Session, *, now: dt.datetime, model_id: int | None
) -> list[ReviewerThroughput]:
    finished: dict[str, ReviewerThroughput] = {}
    for reviewer, status, n in repository.finished_by_reviewer(
        session, since=now - dt.timedelta(hours=1), model_id=model_id
    ):
        row = finished.setdefault(
            reviewer, ReviewerThroughput(reviewer=reviewer, resolved=0, dismissed=0)
        )
        setattr(row, status, n)
    return sorted(finished.values(), key=lambda r: r.reviewer)


def _agreement_counts(
    pairs: Sequence[Any], names: dict[int, str]
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Second reviews and how many agreed, per model and per reviewer."""
    by_model: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_reviewer: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for m, first, second, agreed, n in pairs:
        for bucket in (by_model[names.get(m, str(m))], by_reviewer[first], by_reviewer[second]):
            bucket[0] += n
            bucket[1] += n if agreed else 0
    return by_model, by_reviewer
