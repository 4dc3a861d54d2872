"""Ground truth that arrives after the prediction (POST /feedback)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import ValidationFailed
from app.ingest.flows import on_feedback
from app.performance import labels as performance
from app.performance.labels import Ground
from app.schemas import FeedbackIn, FeedbackResult
from exceptions_queue.labels import LabelRefused, valid_label
from storage.tables import LabelSchema, MonitoredModel, Prediction


def check_label(model: LabelSchema, label: object, loc: list[str | int]) -> str | float:
    """A label valid for the model (:func:`exceptions_queue.labels.valid_label`), or a 422 at ``loc``."""
    try:
        return valid_label(model, label)
    except LabelRefused as refused:
        raise ValidationFailed.at(loc, str(refused)) from None


def record_feedback(
    session: Session, *, model: MonitoredModel, items: Sequence[FeedbackIn], now: dt.datetime
) -> FeedbackResult:
    """Attach ground truth to predictions; the latest label for an id wins."""
    labels = {
        item.id: check_label(model, item.label, ["feedback", i, "label"])
        for i, item in enumerate(items)
    }
    rows = {
        p.client_id: p
        for p in session.scalars(
            select(Prediction).where(
                Prediction.model_id == model.id, Prediction.client_id.in_(list(labels))
            )
        )
    }
    updated = []
    changes = []
    for cid, label in labels.items():
        row = rows.get(cid)
        if row is not None:
            changes.append(Ground(row, row.actual, label))
            row.actual = label
            row.actual_at = now
            updated.append(row)
    session.flush()
    performance.on_feedback(session, model, changes, now=now)
    exceptions = on_feedback(session, model, updated, now=now)
    return FeedbackResult(
        accepted=len(updated),
        unknown_ids=[cid for cid in labels if cid not in rows],
        exceptions=exceptions,
    )
