"""The drift domain's reads: evaluations and incidents, for the API, the UI and /metrics."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.drift.tables import DriftEvaluation, DriftIncident
from storage.sql import newest_first


def evaluations(
    session: Session,
    model_id: int,
    *,
    limit: int,
    before: int | None = None,
    drifted: bool | None = None,
) -> list[DriftEvaluation]:
    """The model's evaluations, newest first (below id ``before``; only ``drifted`` ones)."""
    where = [DriftEvaluation.model_id == model_id]
    if drifted is not None:
        where.append(DriftEvaluation.drifted == drifted)
    return newest_first(session, DriftEvaluation, *where, limit=limit, before=before)


def latest_evaluations(session: Session) -> dict[int, DriftEvaluation]:
    """Each model's newest evaluation, by model id."""
    newest = select(func.max(DriftEvaluation.id)).group_by(DriftEvaluation.model_id)
    rows = session.scalars(select(DriftEvaluation).where(DriftEvaluation.id.in_(newest)))
    return {ev.model_id: ev for ev in rows}


def open_incidents(session: Session) -> dict[int, DriftIncident]:
    """Each model's open drift incident, by model id."""
    rows = session.scalars(select(DriftIncident).where(DriftIncident.status == "open"))
    return {i.model_id: i for i in rows}
