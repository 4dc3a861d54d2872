"""Queue operations with side effects beyond the queue, in the caller's unit of work.

A resolve that makes a model's retraining data ready (its result says so) puts
the ``training_data.ready`` notice in the alert outbox in the same transaction.
A resolve or an undo changes reviewers' labels, so the audited performance sums
of the ticket's predictions follow in the same transaction too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.alerting import rules
from app.performance import labels as performance
from app.settings import Settings
from exceptions_queue import service as queue
from exceptions_queue.tables import Ticket


def resolve(
    session: Session,
    *,
    ticket_id: int,
    actor: queue.Actor,
    lease_token: str | None,
    labels: Sequence[queue.LabelIn],
    note: str | None,
    now: dt.datetime,
    settings: Settings,
) -> Ticket:
    """Resolve a held ticket; announce retraining data when enough labels came in."""
    done = queue.resolve(
        session,
        ticket_id=ticket_id,
        actor=actor,
        lease_token=lease_token,
        labels=labels,
        note=note,
        now=now,
    )
    if done.retraining_ready is not None:
        rules.training_ready(session, done.retraining_ready, settings=settings)
    _labels_changed(session, done.ticket, now=now)
    return done.ticket


def reopen(
    session: Session,
    *,
    ticket_id: int,
    actor: queue.Actor,
    now: dt.datetime,
    lease: dt.timedelta,
) -> Ticket:
    """Undo a resolution or dismissal (its labels are retracted); the reviewer holds it again."""
    ticket = queue.reopen(session, ticket_id=ticket_id, actor=actor, lease=lease, now=now)
    _labels_changed(session, ticket, now=now)
    return ticket


def _labels_changed(session: Session, ticket: Ticket, *, now: dt.datetime) -> None:
    """The predictions a ticket may have labelled: noted, their audited sums follow their
    labels at the next sync (app.performance.labels.sync_pending)."""
    ids = [ticket.prediction_id] if ticket.prediction_id is not None else ticket.prediction_ids
    performance.note_label_changes(
        session, model_id=ticket.model_id, prediction_ids=list(ids or ()), now=now
    )
