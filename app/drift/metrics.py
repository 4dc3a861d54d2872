"""Drift figures for /metrics, read from the database at scrape time."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.catalog import repository as catalog
from app.drift.tables import DriftEvaluation, DriftIncident
from app.ops.metrics import Sample
from storage.base import utcnow


def open_incidents(session: Session) -> tuple[str, str, list[Sample]]:
    names = catalog.names(session)
    counts = dict(
        session.execute(
            select(DriftIncident.model_id, func.count())
            .where(DriftIncident.status == "open")
            .group_by(DriftIncident.model_id)
        ).all()
    )
    return (
        "driftdesk_drift_incidents_open",
        "Open drift incidents per model (1 while a model is drifting).",
        [
            ("driftdesk_drift_incidents_open", {"model": name}, counts.get(mid, 0))
            for mid, name in names.items()
        ],
    )


def evaluations(session: Session) -> tuple[str, str, list[Sample]]:
    names = catalog.names(session)
    rows = session.execute(
        select(DriftEvaluation.model_id, DriftEvaluation.status, func.count()).group_by(
            DriftEvaluation.model_id, DriftEvaluation.status
        )
    )
    return (
        "driftdesk_drift_evaluations",
        "Window evaluations stored, per model and outcome (ok, drift, insufficient_data).",
        [
            ("driftdesk_drift_evaluations", {"model": names.get(m, str(m)), "status": s}, n)
            for m, s, n in rows
        ],
    )


def last_evaluation_age(session: Session) -> tuple[str, str, list[Sample]]:
    names = catalog.names(session)
    now = utcnow()
    latest = session.execute(
        select(DriftEvaluation.model_id, func.max(DriftEvaluation.created_at)).group_by(
            DriftEvaluation.model_id
        )
    )
    samples: list[Sample] = []
    for model_id, at in latest:
        if at is not None:
            if at.tzinfo is None:  # SQLite returns aggregates without our column type
                at = at.replace(tzinfo=now.tzinfo)
            age = (now - at).total_seconds()
            samples.append(
                (
                    "driftdesk_drift_last_evaluation_age_seconds",
                    {"model": names.get(model_id, str(model_id))},
                    age,
                )
            )
    return (
        "driftdesk_drift_last_evaluation_age_seconds",
        "Seconds since each model's latest window evaluation (alert if it grows: the evaluator is stuck).",
        samples,
    )


COLLECTORS = (open_incidents, evaluations, last_evaluation_age)
