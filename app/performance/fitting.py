"""What a reference says about performance, fitted when it is set; and the specs in use.

A reference whose records carry the true ``label`` beside the model's
``prediction`` (and, for classification, its ``confidence`` or
``probabilities``) sets the reference's own metrics and calibrates the
label-free estimate: CBPE's isotonic calibration for classifiers, DLE's loss
models for regressors. Without them, the estimate is null and ``note`` says why.
"""

from __future__ import annotations

import functools
import pickle
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ingest.columns import CONFIDENCE, PREDICTION, Columns
from app.performance.tables import PerformanceReference
from monitors.performance import (
    ClassificationSpec,
    LossModel,
    fit_classification,
    fit_dle,
    labelled_classification,
    labelled_regression,
    reference_metrics,
)
from monitors.performance.dle import MIN_ROWS as MIN_DLE_ROWS
from storage.tables import MonitoredModel, Reference

FITTING = "fitting"
READY = "ready"
FITTING_NOTE = "the label-free estimate's loss models are being fitted in the background"

# Reserved columns of a reference's records besides features and outputs.
LABEL = "__label__"
PROBABILITIES = "__probabilities__"


@dataclass(frozen=True)
class Outcomes:
    """A reference's true labels and the model's probabilities, taken out of its columns."""

    labels: npt.NDArray[Any] | None
    probabilities: npt.NDArray[np.float64] | None  # (rows, classes), NaN rows where none


def take_outcomes(columns: Columns) -> Outcomes:
    """Remove the label and probability columns (drift never sees them)."""
    return Outcomes(columns.values.pop(LABEL, None), columns.values.pop(PROBABILITIES, None))  # type: ignore[arg-type]


@functools.cache
def label_spec(classes: tuple[str, ...]) -> ClassificationSpec:
    """The spec realized and audited sums are kept in: fixed per model (its labels), so
    labels counted under any reference add up."""
    return fit_classification(classes)


def labels_of(model: MonitoredModel) -> tuple[str, ...]:
    return tuple(model.labels or ())


def fit(
    session: Session,
    *,
    model: MonitoredModel,
    reference: Reference,
    columns: Columns,
    outcomes: Outcomes,
) -> PerformanceReference:
    """Fit the reference's calibration (or loss model) and its metrics; store them."""
    row = PerformanceReference(reference_id=reference.id, model_id=model.id, metrics={})
    predicted = columns.values.get(PREDICTION)
    truth = outcomes.labels
    notes: list[str] = []
    if predicted is None or truth is None:
        missing = [n for n, v in (("label", truth), ("prediction", predicted)) if v is None]
        notes.append(
            f"the reference has no {' or '.join(missing)}: no reference metrics and no "
            "label-free estimate; post records with features, prediction, label and "
            "confidence (or probabilities)"
        )
    elif model.task == "classification":
        _fit_classification(row, model, columns, predicted, truth, outcomes, notes)
    else:
        _fit_regression(row, model, columns, predicted, truth, notes)
    row.note = " ".join(notes) or None
    session.add(row)
    session.flush()
    return row


def _fit_classification(
    row: PerformanceReference,
    model: MonitoredModel,
    columns: Columns,
    predicted: npt.NDArray[Any],
    truth: npt.NDArray[Any],
    outcomes: Outcomes,
    notes: list[str],
) -> None:
    classes = labels_of(model)
    confidence = columns.values.get(CONFIDENCE)
    known = np.array([t is not None for t in truth])
    row.labelled_rows = int(known.sum())
    sums = labelled_classification(
        label_spec(classes),
        truth,
        predicted,
        probabilities=outcomes.probabilities,
        confidence=confidence,
    )
    row.metrics = _plain(reference_metrics(sums))
    if outcomes.probabilities is None and (confidence is None or np.isnan(confidence).all()):
        notes.append(
            "the reference has no confidence or probabilities: the label-free estimate "
            "(CBPE) needs them to calibrate"
        )
        return
    spec = fit_classification(
        classes,
        labels=truth,
        predicted=predicted,
        probabilities=outcomes.probabilities,
        confidence=confidence,
    )
    if not spec.calibrated:
        notes.append(
            "too few reference rows with a label, a prediction and a score to calibrate "
            "the label-free estimate"
        )
        return
    row.spec = spec.to_json()


def _fit_regression(
    row: PerformanceReference,
    model: MonitoredModel,
    columns: Columns,
    predicted: npt.NDArray[Any],
    truth: npt.NDArray[Any],
    notes: list[str],
) -> None:
    y_true = np.array([np.nan if t is None else float(t) for t in truth], dtype=np.float64)
    y_pred = np.asarray(predicted, dtype=np.float64)
    row.labelled_rows = int(np.isfinite(y_true).sum())
    row.metrics = _plain(reference_metrics(labelled_regression(y_true, y_pred)))
    if row.labelled_rows < MIN_DLE_ROWS:
        notes.append(
            f"no label-free estimate (DLE): it needs at least {MIN_DLE_ROWS} reference rows "
            f"with a true value and a prediction, got {row.labelled_rows}"
        )
        return
    # the loss models take seconds to minutes: a background step fits them (fit_step)
    features = {f["name"]: columns.values[f["name"]] for f in model.features}
    row.fit_data = pickle.dumps(
        {"format": 1, "features": features, "y_true": y_true, "y_pred": y_pred},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    row.status = FITTING
    notes.append(FITTING_NOTE)


def fit_loss_model(data: bytes, *, seed: int) -> tuple[bytes | None, str | None]:
    """Fit DLE's loss models from a reference's stored ``fit_data``: the models' bytes,
    or None and why not."""
    loaded = pickle.loads(data)  # only bytes this service's own fit() wrote
    if not isinstance(loaded, dict) or loaded.get("format") != 1:
        return None, "no label-free estimate (DLE): the stored training data is unreadable"
    try:
        model = fit_dle(loaded["features"], loaded["y_true"], loaded["y_pred"], seed=seed)
    except ValueError as exc:
        return None, f"no label-free estimate (DLE): {exc}"
    return model.to_bytes(), None


def _plain(values: Mapping[str, float | None]) -> dict[str, float | None]:
    return {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in values.items()}


# --------------------------------------------------------------------------- the fitted, cached
@dataclass(frozen=True)
class Fitted:
    """A reference's fitted performance, loaded (never changes once ready)."""

    reference_id: int
    spec: ClassificationSpec | None
    loss_model: LossModel | None
    metrics: dict[str, float | None]
    note: str | None
    status: str = READY

    @property
    def can_estimate(self) -> bool:
        return self.spec is not None or self.loss_model is not None


_cache: OrderedDict[tuple[str, int], Fitted] = OrderedDict()
_lock = threading.Lock()


def fitted(session: Session, reference_id: int) -> Fitted | None:
    """The fitted performance of a reference (cached per database and reference)."""
    key = (session.get_bind().engine.url.render_as_string(), reference_id)
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    row = session.scalar(
        select(PerformanceReference).where(PerformanceReference.reference_id == reference_id)
    )
    if row is None:
        return None
    found = Fitted(
        reference_id=reference_id,
        spec=ClassificationSpec.from_json(row.spec) if row.spec else None,
        loss_model=LossModel.from_bytes(row.loss_model) if row.loss_model else None,
        metrics=dict(row.metrics or {}),
        note=row.note,
        status=row.status,
    )
    if row.status != READY:  # its loss models are on their way: read it again next time
        return found
    with _lock:
        _cache[key] = found
        while len(_cache) > 32:
            _cache.popitem(last=False)
    return found


def performance_of(session: Session, reference_id: int) -> dict[str, Any] | None:
    """What GET /reference shows of the reference's performance fit: ``status`` (ready,
    or fitting while DLE's loss models are fitted in the background), whether it can
    estimate without labels, its own metrics and the note."""
    row = session.scalar(
        select(PerformanceReference).where(PerformanceReference.reference_id == reference_id)
    )
    if row is None:
        return None
    return {
        "status": row.status,
        "label_free_estimate": bool(row.spec or row.loss_model),
        "metrics": dict(row.metrics or {}),
        "note": row.note,
    }
