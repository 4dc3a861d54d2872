"""Queue operations with side effects beyond the queue, in the caller's unit of work.

A resolve that makes a model's retraining data ready (its result says so) puts
the ``training_data.ready`` notice in the alert outbox in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.alerting import rules
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
    return done.ticket
