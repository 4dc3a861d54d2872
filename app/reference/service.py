"""Reference data: the baseline drift is measured against.

A reference is stored as three things: a summary (per-feature statistics, for
people), a sketch (bin edges and counts, for the detectors) and a bounded random
sample of rows (for Evidently's HTML reports). Setting a new reference also
re-counts the live window's stored rows against the new bins, so drift can be
evaluated at once rather than after a window of fresh traffic.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.errors import NotFound, ValidationFailed
from app.ingest.columns import (
    CONFIDENCE,
    PREDICTION,
    Columns,
    add_outputs,
    categorical_column,
    feature_columns,
    missing_mask,
    numerical_column,
)
from app.ingest.parse import PROBABILITY_TOLERANCE
from app.ingest.sketches import get_spec
from app.ingest.store import block_parts, encode_counts
from app.performance import fitting as performance
from app.reference.reading import too_many_rows
from monitors.sketch import SketchSpec
from monitors.window import WindowSpec
from storage.base import utcnow
from storage.tables import BlockCounts, MonitoredModel, Prediction, Reference

MIN_REFERENCE_ROWS = 100
OUTPUT_COLUMNS = ("prediction", "confidence", "label")
RECORD_FIELDS = ("features", *OUTPUT_COLUMNS, "probabilities")
_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def kinds_of(model: MonitoredModel, columns: Columns) -> dict[str, str]:
    """Feature kinds, plus the model's outputs where the columns have them."""
    kinds = {f["name"]: f["type"] for f in model.features}
    if PREDICTION in columns.values:
        kinds[PREDICTION] = "categorical" if model.task == "classification" else "numerical"
    if CONFIDENCE in columns.values:
        kinds[CONFIDENCE] = "numerical"
    return kinds


def _output_column(model: MonitoredModel, values: Sequence[Any], loc: Any) -> np.ndarray:
    if model.task == "classification":
        column = categorical_column(values, loc=loc)
        labels = set(model.labels or ())
        for i, v in enumerate(column):
            if v is not None and v not in labels:
                raise ValidationFailed.at(loc(i), f"{v!r} is not one of the model's labels")
        return column
    return numerical_column(values, loc=loc)


def columns_from_records(model: MonitoredModel, records: Sequence[Any]) -> Columns:
    """``{"records": [{"features": {...}, "prediction": ..., "confidence": ..., "label": ...}]}``."""
    for i, r in enumerate(records):
        if not isinstance(r, dict) or not isinstance(r.get("features"), dict):
            raise ValidationFailed.at(
                ["records", i, "features"], "each record needs a features object"
            )
        extra = set(r) - set(RECORD_FIELDS)
        if extra:
            raise ValidationFailed.at(["records", i, sorted(extra)[0]], "unknown field")
    columns = feature_columns(
        model.features,
        [r["features"] for r in records],
        strict=model.strict,
        loc=lambda i, name: ["records", i, "features", name],
    )
    if any("prediction" in r for r in records):
        columns.values[PREDICTION] = _output_column(
            model, [r.get("prediction") for r in records], lambda i: ["records", i, "prediction"]
        )
    if any("confidence" in r for r in records):
        conf = numerical_column(
            [r.get("confidence") for r in records], loc=lambda i: ["records", i, "confidence"]
        )
        if ((conf < 0) | (conf > 1)).any():
            i = int(np.flatnonzero((conf < 0) | (conf > 1))[0])
            raise ValidationFailed.at(["records", i, "confidence"], "must be between 0 and 1")
        columns.values[CONFIDENCE] = conf
    if any(r.get("label") is not None for r in records):
        columns.values[performance.LABEL] = _output_column(
            model, [r.get("label") for r in records], lambda i: ["records", i, "label"]
        )
    if any(r.get("probabilities") is not None for r in records):
        columns.values[performance.PROBABILITIES] = _probabilities(model, records)
    return columns


def _probabilities(model: MonitoredModel, records: Sequence[Any]) -> np.ndarray:
    """The records' probabilities as a (rows, labels) matrix, NaN rows where a record has none."""
    labels = list(model.labels or ())
    if model.task != "classification":
        raise ValidationFailed.at(
            ["records", 0, "probabilities"], "probabilities are for classification models"
        )
    out = np.full((len(records), len(labels)), np.nan)
    for i, r in enumerate(records):
        given = r.get("probabilities")
        if given is None:
            continue
        loc: list[str | int] = ["records", i, "probabilities"]
        if not isinstance(given, dict):
            raise ValidationFailed.at(loc, "must be an object of probabilities by label")
        for label, value in given.items():
            if label not in labels:
                raise ValidationFailed.at([*loc, label], "not one of the model's labels")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationFailed.at([*loc, label], "must be a number")
            if not 0 <= value <= 1:
                raise ValidationFailed.at([*loc, label], "must be between 0 and 1")
            out[i, labels.index(label)] = value
        row = np.nan_to_num(out[i])
        if abs(row.sum() - 1.0) > PROBABILITY_TOLERANCE:
            raise ValidationFailed.at(
                loc, f"probabilities must sum to 1 (they sum to {row.sum():.4f})"
            )
        out[i] = row
    return out


def columns_from_frame(
    model: MonitoredModel, frame: pd.DataFrame, *, from_text: bool = False
) -> Columns:
    """A CSV or Parquet table: one column per feature, optional prediction/confidence/label.

    ``from_text`` (CSV): a numerical column with one bad cell is read as text by
    pandas, so it is converted here and the error names the bad cell, not row 0.
    """
    names = {f["name"] for f in model.features}
    if model.strict:
        extra = [c for c in frame.columns if c not in names and c not in OUTPUT_COLUMNS]
        if extra:
            raise ValidationFailed.at(
                ["file", str(extra[0])],
                f"unknown column {extra[0]!r}: the model is strict; drop the column or add the feature",
            )
    numerical = [f["name"] for f in model.features if f["type"] == "numerical"]
    for name in numerical if from_text else ():
        if name in frame.columns and frame[name].dtype == object:
            as_number = pd.to_numeric(frame[name], errors="coerce")
            bad = np.flatnonzero((as_number.isna() & frame[name].notna()).to_numpy())
            if len(bad):
                i = int(bad[0])
                raise ValidationFailed.at(
                    ["file", "row", i, "column", name],
                    f"must be a number or empty, not {frame[name].iloc[i]!r}",
                )
            frame = frame.assign(**{name: as_number})
    frame = frame.astype(object).where(frame.notna(), None)  # type: ignore[call-overload]
    records = [
        {"features": {k: v for k, v in row.items() if k in names}}
        | {k: row[k] for k in OUTPUT_COLUMNS if k in row}
        for row in frame.to_dict(orient="records")
    ]
    # numpy scalars from Parquet → plain Python, so the type checks see int/float/str
    for r in records:
        for k, v in r["features"].items():
            if isinstance(v, np.generic):
                r["features"][k] = v.item()
        for k in OUTPUT_COLUMNS:
            if isinstance(r.get(k), np.generic):
                r[k] = r[k].item()
    try:
        return columns_from_records(model, records)
    except ValidationFailed as exc:  # point at the file's row and column, not a JSON path
        for d in exc.details:
            loc = d["loc"]
            d["loc"] = ["file", "row", loc[1], "column", loc[-1]]
        raise


def _summary(columns: Columns, kinds: Mapping[str, str]) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for name, kind in kinds.items():
        values = columns.values[name]
        missing = missing_mask(values)
        present = values[~missing]
        entry: dict[str, Any] = {
            "type": kind,
            "count": len(present),
            "missing": int(missing.sum()),
        }
        if kind == "numerical":
            x = present.astype(np.float64)
            if len(x):
                qs = np.quantile(x, _QUANTILES)
                entry |= {
                    "mean": float(x.mean()),
                    "std": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
                    "min": float(x.min()),
                    "max": float(x.max()),
                    **{
                        f"p{round(q * 100):02d}": float(v)
                        for q, v in zip(_QUANTILES, qs, strict=True)
                    },
                }
        else:
            cats, counts = np.unique(present.astype(str), return_counts=True)
            order = np.argsort(-counts, kind="stable")[:20]
            entry |= {
                "distinct": len(cats),
                "top": [{"value": str(cats[i]), "count": int(counts[i])} for i in order],
            }
        features[name] = entry
    return features


def _sample_bytes(columns: Columns, rows: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(columns.rows, size=min(rows, columns.rows), replace=False))
    frame = pd.DataFrame({k: v[take] for k, v in columns.values.items()})
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def load_sample(ref: Reference) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(ref.sample))


def set_reference(
    session: Session,
    *,
    model: MonitoredModel,
    columns: Columns,
    source: str,
    created_by: str | None,
    max_rows: int,
    sample_rows: int,
    window: tuple[dt.datetime, dt.datetime] | None = None,
) -> Reference:
    """Make ``columns`` the model's baseline and re-count its live window against it."""
    if columns.rows < MIN_REFERENCE_ROWS:
        raise ValidationFailed(
            f"a reference needs at least {MIN_REFERENCE_ROWS} rows to measure drift against "
            f"(got {columns.rows})",
            details=[{"loc": ["records"], "msg": "too few rows"}],
        )
    if columns.rows > max_rows:
        raise too_many_rows(max_rows, columns.rows)
    outcomes = performance.take_outcomes(columns)
    kinds = kinds_of(model, columns)
    spec = SketchSpec.fit(columns.values, kinds)  # type: ignore[arg-type]
    counts = spec.count(columns.values)
    ref = Reference(
        model_id=model.id,
        source=source,
        rows=columns.rows,
        summary=_summary(columns, kinds),
        sketch=spec.to_dict(),
        counts=encode_counts(counts),
        sample=_sample_bytes(columns, sample_rows, seed=model.id),
        window_start=window[0] if window else None,
        window_end=window[1] if window else None,
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(ref)
    session.flush()
    model.reference_id = ref.id
    model.updated_at = utcnow()
    recount_window(session, model=model, reference=ref)
    performance.fit(session, model=model, reference=ref, columns=columns, outcomes=outcomes)
    return ref


def reference_out(ref: Reference, session: Session | None = None) -> dict[str, Any]:
    out = {
        "id": ref.id,
        "rows": ref.rows,
        "source": ref.source,
        "created_at": ref.created_at,
        "created_by": ref.created_by,
        "window_start": ref.window_start,
        "window_end": ref.window_end,
        "features": {k: v for k, v in ref.summary.items() if not k.startswith("__")},
        "prediction": ref.summary.get(PREDICTION),
        "confidence": ref.summary.get(CONFIDENCE),
    }
    if session is not None:
        out["performance"] = performance.performance_of(session, ref.id)
    return out


def current_reference(session: Session, model: MonitoredModel) -> Reference:
    if model.reference_id is None:
        raise NotFound(
            f"model {model.name!r} has no reference yet: POST /v1/models/{model.name}/reference"
        )
    ref = session.get(Reference, model.reference_id)
    assert ref is not None
    return ref


def prediction_columns(model: MonitoredModel, rows: Sequence[Prediction]) -> Columns:
    """Stored predictions back into columns (features and outputs)."""
    columns = feature_columns(
        model.features, [p.features for p in rows], strict=False, loc=lambda i, n: [i, n]
    )
    add_outputs(
        columns,
        task=model.task,
        outputs=[p.prediction for p in rows],
        confidence=np.array(
            [np.nan if p.confidence is None else p.confidence for p in rows], dtype=np.float64
        ),
    )
    return columns


def with_outcomes(model: MonitoredModel, rows: Sequence[Prediction], columns: Columns) -> Columns:
    """``columns`` of stored predictions plus their ground truth (feedback) and probabilities,
    so a reference frozen from live traffic can calibrate the label-free estimate."""
    if any(p.actual is not None for p in rows):
        columns.values[performance.LABEL] = np.array([p.actual for p in rows], dtype=object)
    if model.task == "classification" and any(p.probabilities for p in rows):
        labels = list(model.labels or ())
        columns.values[performance.PROBABILITIES] = np.array(
            [
                [(p.probabilities or {}).get(k, np.nan) for k in labels]
                if p.probabilities
                else [np.nan] * len(labels)
                for p in rows
            ],
            dtype=np.float64,
        )
    return columns


def iter_prediction_chunks(
    session: Session, stmt: Any, chunk: int = 10_000
) -> Iterator[list[Prediction]]:
    rows: list[Prediction] = []
    for p in session.scalars(stmt.execution_options(yield_per=chunk)):
        rows.append(p)
        if len(rows) == chunk:
            yield rows
            rows = []
    if rows:
        yield rows


def get_reference(session: Session, reference_id: int) -> Reference | None:
    """A stored reference by id (the current one or an older one)."""
    return session.get(Reference, reference_id)


def predictions_between(
    session: Session, model: MonitoredModel, start: dt.datetime, end: dt.datetime, *, limit: int
) -> list[Prediction]:
    """The model's stored predictions in ``[start, end)``, oldest first, ``limit`` at most."""
    stmt = (
        select(Prediction)
        .where(Prediction.model_id == model.id, Prediction.ts >= start, Prediction.ts < end)
        .order_by(Prediction.ts, Prediction.id)
        .limit(limit)
    )
    return [p for chunk in iter_prediction_chunks(session, stmt) for p in chunk]


def live_window_query(model: MonitoredModel, window: WindowSpec, now: dt.datetime) -> Any:
    stmt = select(Prediction).where(Prediction.model_id == model.id)
    if window.kind == "count":
        first_block = max(0, (model.record_count - 1) // window.step - window.blocks_per_window + 1)
        return stmt.where(Prediction.seq >= first_block * window.step).order_by(Prediction.seq)
    first_block = int(now.timestamp()) // window.step - window.blocks_per_window + 1
    since = dt.datetime.fromtimestamp(first_block * window.step, dt.UTC)
    return stmt.where(Prediction.ts >= since).order_by(Prediction.ts)


def recount_window(session: Session, *, model: MonitoredModel, reference: Reference) -> int:
    """Count the live window's stored rows into blocks for ``reference``; returns rows."""
    spec = get_spec(session, reference.id)
    window = WindowSpec.parse(model.window)
    session.execute(
        delete(BlockCounts).where(
            BlockCounts.model_id == model.id, BlockCounts.reference_id == reference.id
        )
    )
    total = 0
    now = utcnow()
    for rows in iter_prediction_chunks(session, live_window_query(model, window, now)):
        parts = block_parts(
            spec=spec,
            window=window,
            columns=prediction_columns(model, rows),
            seqs=np.array([p.seq for p in rows], dtype=np.int64),
            stamps=[p.ts for p in rows],
            model_id=model.id,
            reference_id=reference.id,
            now=now,
        )
        session.execute(insert(BlockCounts), parts)
        total += len(rows)
    return total
