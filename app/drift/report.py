"""The Evidently HTML report of an evaluated window, from bounded samples.

Evidently rescans raw rows (seconds per 10k rows), so the report compares the
reference's stored sample with at most ``report_sample_rows`` of the window's
rows, and the result is cached per database and evaluation in this process.

Reports carry values that API clients sent (category values, feature names):
:mod:`monitors.report` encodes them so they cannot leave the page's data
script, and :func:`report_response` serves every report (API and UI) under the
page's own ``Content-Security-Policy``: only its inline scripts run, in a
``sandbox`` with an opaque origin.
"""

from __future__ import annotations

import pandas as pd
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.caching import PerDatabaseCache
from app.drift.service import window_predictions_query
from app.drift.tables import DriftEvaluation
from app.errors import NotFound
from app.ingest.columns import CONFIDENCE, PREDICTION
from app.reference.service import load_sample, prediction_columns
from monitors.report import ReportPage, build_report
from storage.tables import MonitoredModel, Prediction, Reference

_cache: PerDatabaseCache[ReportPage] = PerDatabaseCache(16)


def window_sample(
    session: Session, model: MonitoredModel, evaluation: DriftEvaluation, rows: int
) -> pd.DataFrame:
    stmt = window_predictions_query(model, evaluation).order_by(Prediction.id.desc()).limit(rows)
    predictions = session.scalars(stmt).all()
    columns = prediction_columns(model, predictions)
    return pd.DataFrame(columns.values)


def report_page(
    session: Session, *, model: MonitoredModel, evaluation_id: int, sample_rows: int
) -> ReportPage:
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
    report = build_report(
        ref_sample,
        current,
        numerical=numerical,
        categorical=categorical,
        title=(
            f"driftdesk · {model.name} · evaluation {evaluation.id} "
            f"({evaluation.rows} rows; report on a sample of {len(current)})"
        ),
    )
    _cache.put(session, evaluation_id, report)
    return report


def report_response(report: ReportPage) -> HTMLResponse:
    """The report as a response that runs its own scripts and nothing else."""
    return HTMLResponse(
        report.html,
        headers={
            "Content-Security-Policy": report.content_security_policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, max-age=300",
        },
    )
