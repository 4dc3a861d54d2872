"""Retention: raw prediction rows older than ``retention_days`` are deleted.

Sketches, evaluations, tickets and labels are small and kept. A raw row is kept
past retention while something still needs it: a label (the training-data
export reads its features) or a ticket that is not finished.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from app.db import Database
from app.settings import Settings
from exceptions_queue.states import FINISHED
from exceptions_queue.tables import Label, Ticket
from storage.base import utcnow
from storage.tables import MonitoredModel, Prediction

log = logging.getLogger("driftdesk.retention")

BATCH = 5_000  # rows deleted per transaction, so writers are never held up for long


def expire_predictions(session: Session, *, model_id: int, before: dt.datetime) -> int:
    """Delete up to BATCH expired rows of one model that nothing needs; returns how many."""
    needed: set[int] = set()
    for single, many in session.execute(
        select(Ticket.prediction_id, Ticket.prediction_ids).where(
            Ticket.model_id == model_id, Ticket.status.not_in(FINISHED)
        )
    ):
        if single is not None:
            needed.add(single)
        needed.update(many or ())
    candidates = (
        select(Prediction.id)
        .where(
            Prediction.model_id == model_id,
            Prediction.ts < before,
            ~exists().where(Label.prediction_id == Prediction.id),
        )
        .order_by(Prediction.id)
        .limit(BATCH + len(needed))
    )
    ids = [pid for pid in session.scalars(candidates) if pid not in needed][:BATCH]
    if not ids:
        return 0
    session.execute(delete(Prediction).where(Prediction.id.in_(ids)))
    return len(ids)


def run_retention(db: Database, settings: Settings) -> int:
    """The retention loop's step: one batch per model at most."""
    if settings.retention_days <= 0:
        return 0
    before = utcnow() - dt.timedelta(days=settings.retention_days)
    with db.session(readonly=True) as session:
        model_ids = session.scalars(select(MonitoredModel.id)).all()
    deleted = 0
    for model_id in model_ids:
        with db.session() as session:
            n = expire_predictions(session, model_id=model_id, before=before)
        if n:
            log.info("expired prediction rows", extra={"model_id": model_id, "rows": n})
        deleted += n
    return deleted
