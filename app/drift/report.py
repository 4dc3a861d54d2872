"""The Evidently HTML report of an evaluated window, from bounded samples.

Evidently rescans raw rows (seconds per 10k rows), so the report compares the
reference's stored sample with at most ``report_sample_rows`` of the window's
rows, and the result is cached per database and evaluation in this process.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.orm import Session

from app.caching import PerDatabaseCache
from app.drift.service import window_predictions_query
from app.drift.tables import DriftEvaluation
from app.errors import NotFound
from app.ingest.columns import CONFIDENCE, PREDICTION
from app.reference.service import load_sample, prediction_columns
from monitors.report import build_report
from storage.tables import MonitoredModel, Prediction, Reference

_cache: PerDatabaseCache[str] = PerDatabaseCache(16)


def window_sample(
    session: Session, model: MonitoredModel, evaluation: DriftEvaluation, rows: int
) -> pd.DataFrame:
    stmt = window_predictions_query(model, evaluation).order_by(Prediction.id.desc()).limit(rows)
    predictions = session.scalars(stmt).all()
    columns = prediction_columns(model, predictions)
    return pd.DataFrame(columns.values)


def report_html(
    session: Session, *, model: MonitoredModel, evaluation_id: int, sample_rows: int
) -> str:
    # whose evaluation it is is checked before the cache is: a cached report must not
    # be readable under another model's name
    evaluation = session.get(DriftEvaluation, evaluation_id)
    if evaluation is None or evaluation.model_id != model.id:
        raise NotFound(
            f"no evaluation {evaluation_id} for model {model.name!r}: "
            f"list them with GET /v1/models/{model.name}/drift"
        )
    cached = _cache.get(session, evaluation_id)
    if cached is not None:
        return cached
    reference = session.get(Reference, evaluation.reference_id)
    assert reference is not None
    current = window_sample(session, model, evaluation, sample_rows)
    if current.empty:
        raise NotFound(
            f"evaluation {evaluation_id} has no stored rows left to report on "
            "(its window was empty, or its rows are past retention)"
        )
    numerical = [f["name"] for f in model.features if f["type"] == "numerical"]
    categorical = [f["name"] for f in model.features if f["type"] == "categorical"]
    ref_sample = load_sample(reference)
    if PREDICTION in ref_sample.columns:
        (categorical if model.task == "classification" else numerical).append(PREDICTION)
    if CONFIDENCE in ref_sample.columns and ref_sample[CONFIDENCE].notna().any():
        numerical.append(CONFIDENCE)
    html = build_report(
        ref_sample,
        current,
        numerical=numerical,
        categorical=categorical,
        title=(
            f"driftdesk · {model.name} · evaluation {evaluation.id} "
            f"({evaluation.rows} rows; report on a sample of {len(current)})"
        ),
    )
    _cache.put(session, evaluation_id, html)
    return html
