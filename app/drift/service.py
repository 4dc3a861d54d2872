"""Evaluating windows, keeping incidents, and the evaluator loop.

A window is the sum of its blocks' counts (storage.tables.BlockCounts), so an
evaluation costs O(features × bins) whatever the window's size. Decisions come
from monitors.drift; this module adds the storage, the schedule, the debounce
(incidents), and hands an incident that opens or closes to app.drift.flows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app import incidents
from app.db import Database
from app.drift import flows
from app.drift.events import IncidentClosed, IncidentOpened
from app.drift.tables import DriftCalibration, DriftEvaluation, DriftIncident, EvaluatorState
from app.errors import Conflict
from app.incidents import IncidentKind
from app.ingest.columns import CONFIDENCE, PREDICTION
from app.ingest.sketches import get_spec
from app.ingest.store import decode_counts, encode_counts
from app.reference.service import current_reference
from app.settings import Settings
from monitors.drift import Calibration, DriftConfig, DriftResult, calibrate, evaluate
from monitors.online import PageHinkley
from monitors.sketch import SketchSpec
from monitors.window import WindowSpec
from storage.base import utcnow
from storage.sql import LockKey, advisory_lock
from storage.tables import BlockCounts, MonitoredModel, Prediction, Reference

log = logging.getLogger("driftdesk.drift")

MAX_CATCH_UP = 50  # scheduled evaluations one loop step may run for one model
OUTPUT_NAMES = {PREDICTION: "prediction", CONFIDENCE: "confidence"}
SAMPLE_CANDIDATES = 5_000
# Page–Hinkley on block-part mean confidence: a 0.05 drop in mean confidence is
# signalled within a few parts; drifts slower than 0.01 per part are left to
# the window evaluations.
ONLINE_PARAMS = {"delta": 0.01, "threshold": 0.25, "min_instances": 10}


def drift_config(model: MonitoredModel, settings: Settings) -> DriftConfig:
    d = model.drift
    return DriftConfig(
        detectors=d.get("detectors", "auto"),
        alpha=d.get("alpha", 0.01),
        correction=d.get("correction", "bh"),
        min_effect=d.get("min_effect", "auto"),
        min_rows=d.get("min_rows") or settings.drift_min_rows,
    )


def config_key(config: DriftConfig) -> str:
    data = config.to_dict()
    data.pop("min_rows", None)  # does not change the null distributions
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class WindowCounts:
    counts: npt.NDArray[np.int64]
    rows: int
    first_ts: dt.datetime | None
    last_ts: dt.datetime | None


def sum_blocks(
    session: Session, *, model: MonitoredModel, reference_id: int, spec: SketchSpec, blocks: range
) -> WindowCounts:
    """A window's counts: the sum of its blocks' partial counts."""
    total = np.zeros(spec.size, dtype=np.int64)
    rows = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    parts = session.execute(
        select(
            BlockCounts.counts, BlockCounts.rows, BlockCounts.first_ts, BlockCounts.last_ts
        ).where(
            BlockCounts.model_id == model.id,
            BlockCounts.reference_id == reference_id,
            BlockCounts.block >= blocks.start,
            BlockCounts.block < blocks.stop,
        )
    )
    for blob, n, f, la in parts:
        total += decode_counts(blob)
        rows += n
        first = f if first is None or f < first else first
        last = la if last is None or la > last else last
    return WindowCounts(total, rows, first, last)


def compact_blocks(session: Session, *, model_id: int, reference_id: int, before_block: int) -> int:
    """Merge the partial rows of finished blocks into one row each; returns rows removed.

    Only blocks before ``before_block`` (finished: nothing will be added) are
    touched, and only the partial rows read here are deleted, so a concurrent
    writer can never lose counts.
    """
    cand = (
        session.execute(
            select(BlockCounts.block)
            .where(
                BlockCounts.model_id == model_id,
                BlockCounts.reference_id == reference_id,
                BlockCounts.block < before_block,
            )
            .group_by(BlockCounts.block)
            .having(func.count() > 1)
            .limit(200)
        )
        .scalars()
        .all()
    )
    removed = 0
    for block in cand:
        parts = (
            session.execute(
                select(BlockCounts).where(
                    BlockCounts.model_id == model_id,
                    BlockCounts.reference_id == reference_id,
                    BlockCounts.block == block,
                )
            )
            .scalars()
            .all()
        )
        merged = decode_counts(parts[0].counts)
        for p in parts[1:]:
            merged = merged + decode_counts(p.counts)
        session.execute(delete(BlockCounts).where(BlockCounts.id.in_([p.id for p in parts])))
        session.execute(
            insert(BlockCounts).values(
                model_id=model_id,
                reference_id=reference_id,
                block=block,
                rows=sum(p.rows for p in parts),
                counts=encode_counts(merged),
                first_ts=min(p.first_ts for p in parts),
                last_ts=max(p.last_ts for p in parts),
                confidence_sum=sum(p.confidence_sum for p in parts),
                confidence_rows=sum(p.confidence_rows for p in parts),
                # keep the newest part's id order: the online detector reads parts by id
                id=max(p.id for p in parts),
                created_at=utcnow(),
            )
        )
        removed += len(parts) - 1
    return removed


def _calibration_rows(window: WindowSpec, rows: int, min_rows: int) -> int:
    """The window size a calibration is computed for (cached per reference)."""
    if window.kind == "count":
        return window.size
    # time windows vary in rows: calibrate at the next power of two; monitors.drift
    # rescales the null quantile to the actual rows
    return int(2 ** np.ceil(np.log2(max(rows, min_rows, 2))))


@dataclass(frozen=True)
class _Calibrated:
    """A window size's calibration, and whether it still has to be stored."""

    calibration: Calibration
    key: str
    window_rows: int
    new: bool


def _calibration_of(reference_id: int, key: str, window_rows: int) -> tuple[Any, ...]:
    return (
        DriftCalibration.reference_id == reference_id,
        DriftCalibration.config_key == key,
        DriftCalibration.window_rows == window_rows,
    )


def _find_calibration(
    session: Session,
    *,
    reference: Reference,
    spec: SketchSpec,
    ref_counts: npt.NDArray[np.int64],
    config: DriftConfig,
    window_rows: int,
) -> _Calibrated:
    """The stored calibration of this window size, else one computed now.

    Computed once per reference, configuration and window size; a new one is
    stored by :func:`_store_calibration` (in the write transaction).
    """
    key = config_key(config)
    row = session.scalar(
        select(DriftCalibration).where(*_calibration_of(reference.id, key, window_rows))
    )
    if row is not None:
        return _Calibrated(Calibration.from_dict(row.data), key, window_rows, new=False)
    calibration = calibrate(
        spec, ref_counts, window_rows=window_rows, config=config, seed=reference.id
    )
    return _Calibrated(calibration, key, window_rows, new=True)


def _store_calibration(session: Session, reference_id: int, found: _Calibrated) -> None:
    if not found.new:
        return
    stored = session.scalar(
        select(DriftCalibration.id).where(
            *_calibration_of(reference_id, found.key, found.window_rows)
        )
    )
    if stored is None:  # (another process may have stored it meanwhile)
        session.add(
            DriftCalibration(
                reference_id=reference_id,
                config_key=found.key,
                window_rows=found.window_rows,
                data=found.calibration.to_dict(),
                created_at=utcnow(),
            )
        )
        session.flush()


def _feature_out(d: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    out = dict(d)
    if name is not None:
        out["name"] = name
    return out


def _result_json(features: DriftResult, outputs: DriftResult | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": features.status,
        "reference_rows": features.reference_rows,
        "features": [f.to_dict() for f in features.features],
        "prediction": None,
        "confidence": None,
    }
    if outputs is not None:
        for f in outputs.features:
            out[OUTPUT_NAMES[f.name]] = _feature_out(f.to_dict(), OUTPUT_NAMES[f.name])
    return out


def current_blocks(model: MonitoredModel, window: WindowSpec, now: dt.datetime) -> tuple[int, int]:
    """(last finished block, block in progress) of the model's window right now."""
    if window.kind == "count":
        finished = model.record_count // window.step - 1
        in_progress = max(0, (model.record_count - 1) // window.step)
        return finished, in_progress
    current = int(now.timestamp()) // window.step
    return current - 1, current


@dataclass(frozen=True)
class Judgement:
    """A window judged (reads and computation only), not stored yet."""

    values: dict[str, Any]  # the DriftEvaluation's columns
    calibration: _Calibrated | None
    model_updated_at: dt.datetime

    @property
    def block(self) -> int:
        return int(self.values["last_block"])


def _verdict(
    spec: SketchSpec,
    ref_counts: npt.NDArray[np.int64],
    window_counts: npt.NDArray[np.int64],
    *,
    config: DriftConfig,
    calibration: Calibration | None,
) -> tuple[str, bool, dict[str, Any]]:
    """(status, drifted, result as stored) of a window: its features, then the model's outputs."""
    feature_names = [n for n in spec.names if not n.startswith("__")]
    output_names = [n for n in (PREDICTION, CONFIDENCE) if n in spec.names]
    features = evaluate(
        spec, ref_counts, window_counts, config=config, calibration=calibration, names=feature_names
    )
    outputs = (
        evaluate(
            spec,
            ref_counts,
            window_counts,
            config=config,
            calibration=calibration,
            names=output_names,
        )
        if output_names
        else None
    )
    drifted = features.drifted or bool(outputs and outputs.drifted)
    status = (
        "insufficient_data"
        if features.status == "insufficient_data"
        else ("drift" if drifted else "ok")
    )
    result = _result_json(features, outputs)
    result["status"] = status
    return status, drifted, result


def judge_window(
    session: Session,
    *,
    model: MonitoredModel,
    settings: Settings,
    last_block: int,
    trigger: str,
    now: dt.datetime,
    scheduled: bool = False,
    note: dict[str, Any] | None = None,
) -> Judgement:
    """Judge the window ending with ``last_block``: reads only, so a read-only session does.

    The evaluator judges due windows before its write transaction, so SQLite's one
    write lock is not held while the windows are summed and tested (a calibration,
    computed once per window size, takes a quarter of a second).
    """
    reference = current_reference(session, model)
    spec = get_spec(session, reference.id)
    ref_counts = decode_counts(reference.counts)
    window = WindowSpec.parse(model.window)
    blocks = window.window_blocks(last_block=last_block)
    wc = sum_blocks(session, model=model, reference_id=reference.id, spec=spec, blocks=blocks)
    config = drift_config(model, settings)
    found = None
    if wc.rows >= config.min_rows:
        found = _find_calibration(
            session,
            reference=reference,
            spec=spec,
            ref_counts=ref_counts,
            config=config,
            window_rows=_calibration_rows(window, wc.rows, config.min_rows),
        )
    status, drifted, result = _verdict(
        spec, ref_counts, wc.counts, config=config, calibration=found.calibration if found else None
    )
    if note:
        result["note"] = note
    values = {
        "model_id": model.id,
        "reference_id": reference.id,
        "trigger": trigger,
        "scheduled_block": last_block if scheduled else None,
        "first_block": blocks.start,
        "last_block": blocks.stop - 1,
        "window_start": wc.first_ts,
        "window_end": wc.last_ts,
        "rows": wc.rows,
        "status": status,
        "drifted": drifted,
        "result": result,
        "created_at": now,
    }
    return Judgement(values, found, model.updated_at)


def record_judgement(
    session: Session,
    judgement: Judgement,
    *,
    model: MonitoredModel,
    settings: Settings,
    now: dt.datetime,
) -> DriftEvaluation | None:
    """Store a judged window and move the incident; ``None`` when a scheduled
    evaluation of that block already exists (another worker ran it)."""
    values = judgement.values
    if judgement.calibration is not None:
        _store_calibration(session, values["reference_id"], judgement.calibration)
    if values["scheduled_block"] is not None:
        exists = session.scalar(
            select(DriftEvaluation.id).where(
                DriftEvaluation.model_id == model.id,
                DriftEvaluation.reference_id == values["reference_id"],
                DriftEvaluation.scheduled_block == values["scheduled_block"],
            )
        )
        if exists is not None:
            return None
    evaluation = DriftEvaluation(**values)
    session.add(evaluation)
    session.flush()
    _advance_incident(session, model=model, evaluation=evaluation, settings=settings, now=now)
    log.info(
        "drift evaluated",
        extra={
            "model": model.name,
            "evaluation": evaluation.id,
            "rows": values["rows"],
            "status": values["status"],
            "trigger": values["trigger"],
        },
    )
    return evaluation


def _drifted_names(evaluation: DriftEvaluation) -> list[str]:
    r = evaluation.result
    names = [f["name"] for f in r["features"] if f["drifted"]]
    names += [k for k in ("prediction", "confidence") if r.get(k) and r[k]["drifted"]]
    return names


def _severity(evaluation: DriftEvaluation) -> str:
    r = evaluation.result
    drifted = [f for f in r["features"] if f["drifted"]]
    outputs = [r[k] for k in ("prediction", "confidence") if r.get(k) and r[k]["drifted"]]
    share = len(drifted) / max(1, len(r["features"]))
    strongest = max(
        (f["effect"] / f["threshold"] for f in drifted + outputs if f.get("threshold")),
        default=0.0,
    )
    return "critical" if outputs or share >= 0.5 or strongest >= 3.0 else "warning"


DRIFT_INCIDENTS = IncidentKind(
    incident=DriftIncident,
    evaluation=DriftEvaluation,
    bad=DriftEvaluation.drifted,
    newest_first=DriftEvaluation.id.desc(),
)


def _advance_incident(
    session: Session,
    *,
    model: MonitoredModel,
    evaluation: DriftEvaluation,
    settings: Settings,
    now: dt.datetime,
) -> None:
    """Open an incident after k drifted of the last m evaluations; close it after q clean."""

    def new(**shared: Any) -> DriftIncident:
        return DriftIncident(
            **shared,
            severity=_severity(evaluation),
            drifted_features=_drifted_names(evaluation),
        )

    def carry(incident: DriftIncident, judged: bool) -> None:
        if judged and evaluation.drifted:
            merged = [*incident.drifted_features, *_drifted_names(evaluation)]
            incident.drifted_features = list(dict.fromkeys(merged))
            if _severity(evaluation) == "critical":
                incident.severity = "critical"

    def opened(incident: DriftIncident) -> None:
        flows.incident_opened(
            session, _opened(session, model, evaluation, incident, now), settings=settings
        )

    def closed(incident: DriftIncident) -> None:
        flows.incident_closed(
            session,
            IncidentClosed(
                model_id=model.id,
                model_name=model.name,
                at=now,
                incident_id=incident.id,
                evaluation_id=evaluation.id,
                opened_at=incident.opened_at,
            ),
        )

    incidents.advance(
        session,
        DRIFT_INCIDENTS,
        incidents.Moves(new=new, opened=opened, closed=closed, carry=carry),
        model=model,
        evaluation=evaluation,
        bad=evaluation.drifted,
        now=now,
    )


def _opened(
    session: Session,
    model: MonitoredModel,
    evaluation: DriftEvaluation,
    incident: DriftIncident,
    now: dt.datetime,
) -> IncidentOpened:
    """The opened incident as the flows take it, with the predictions worth a label."""
    sample = labelling_sample(
        session,
        model=model,
        evaluation=evaluation,
        size=model.options.get("drift_sample_size", 20),
    )
    return IncidentOpened(
        model_id=model.id,
        model_name=model.name,
        at=now,
        incident_id=incident.id,
        evaluation_id=evaluation.id,
        severity=incident.severity,
        drifted_features=tuple(incident.drifted_features),
        window_start=evaluation.window_start,
        window_end=evaluation.window_end,
        evaluation=evaluation_out(evaluation),
        sample_prediction_ids=tuple(sample),
    )


def window_predictions_query(model: MonitoredModel, evaluation: DriftEvaluation) -> Any:
    """The stored rows of an evaluated window (by sequence for count windows, time for time)."""
    window = WindowSpec.parse(model.window)
    stmt = select(Prediction).where(Prediction.model_id == model.id)
    start, _ = window.block_bounds(evaluation.first_block)
    _, end = window.block_bounds(evaluation.last_block)
    if window.kind == "count":
        return stmt.where(Prediction.seq >= start, Prediction.seq < end)
    return stmt.where(
        Prediction.ts >= dt.datetime.fromtimestamp(start, dt.UTC),
        Prediction.ts < dt.datetime.fromtimestamp(end, dt.UTC),
    )


def labelling_sample(
    session: Session, *, model: MonitoredModel, evaluation: DriftEvaluation, size: int
) -> list[int]:
    """Predictions of the window most worth a label: least confident and most out-of-reference.

    Each candidate (the window's latest rows, bounded) is ranked by confidence
    (ascending) and by how far its drifted features lie outside the reference
    (descending); the sample takes the best sums of the two ranks.
    """
    rows = session.scalars(
        window_predictions_query(model, evaluation)
        .order_by(Prediction.id.desc())
        .limit(SAMPLE_CANDIDATES)
    ).all()
    if not rows:
        return []
    reference = current_reference(session, model)
    summary = reference.summary
    drifted = [f["name"] for f in evaluation.result["features"] if f["drifted"]]
    outside = np.zeros(len(rows))
    for name in drifted:
        s = summary.get(name, {})
        if s.get("type") == "numerical" and "p25" in s:
            spread = max(s["p75"] - s["p25"], 1e-12)
            values = np.array(
                [np.nan if (v := p.features.get(name)) is None else float(v) for p in rows]
            )
            distance = np.abs(values - s["p50"]) / spread
            outside += np.nan_to_num(distance, nan=0.0)
        elif s.get("type") == "categorical":
            known = {t["value"] for t in s.get("top", [])}
            outside += np.array([str(p.features.get(name)) not in known for p in rows], float)
    confidence = np.array([1.0 if p.confidence is None else p.confidence for p in rows])
    conf_rank = np.argsort(np.argsort(confidence, kind="stable"), kind="stable")
    out_rank = np.argsort(np.argsort(-outside, kind="stable"), kind="stable")
    order = np.argsort(conf_rank + out_rank, kind="stable")[:size]
    return [rows[int(i)].id for i in order]


def evaluation_out(ev: DriftEvaluation) -> dict[str, Any]:
    """An evaluation as API.md shows it."""
    r = ev.result
    out: dict[str, Any] = {
        "id": ev.id,
        "window_start": ev.window_start,
        "window_end": ev.window_end,
        "rows": ev.rows,
        "drifted": ev.drifted,
        "status": ev.status,
        "features": r["features"],
        "prediction": r.get("prediction"),
        "confidence": r.get("confidence"),
        "incident_id": ev.incident_id,
        "reference_id": ev.reference_id,
        "reference_rows": r.get("reference_rows"),
        "trigger": ev.trigger,
        "blocks": [ev.first_block, ev.last_block],
        "created_at": ev.created_at,
    }
    if "note" in r:
        out["note"] = r["note"]
    return out


def incident_out(incident: DriftIncident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "status": incident.status,
        "severity": incident.severity,
        "drifted_features": incident.drifted_features,
        "opened_at": incident.opened_at,
        "closed_at": incident.closed_at,
        "opened_evaluation_id": incident.opened_evaluation_id,
        "last_evaluation_id": incident.last_evaluation_id,
        "closed_evaluation_id": incident.closed_evaluation_id,
        "evaluations": incident.evaluations,
        # labels needed to decide whether the model's performance bound is crossed
        # (set by the performance evaluator); the audit is raised while they are
        "needs_labels": incident.status == "open" and incident.needs_labels,
        "labels_note": incident.labels_note,
    }


def evaluate_now(
    session: Session, *, model: MonitoredModel, settings: Settings, now: dt.datetime
) -> DriftEvaluation:
    """POST /drift/evaluate: the window as it stands, including the block in progress."""
    if model.reference_id is None:
        raise Conflict(
            f"model {model.name!r} has no reference to measure drift against: "
            f"POST /v1/models/{model.name}/reference first"
        )
    window = WindowSpec.parse(model.window)
    _, in_progress = current_blocks(model, window, now)
    judgement = judge_window(
        session, model=model, settings=settings, last_block=in_progress, trigger="manual", now=now
    )
    evaluation = record_judgement(session, judgement, model=model, settings=settings, now=now)
    assert evaluation is not None  # (only scheduled evaluations can exist already)
    return evaluation


# --------------------------------------------------------------------------- the loop
def _lock_model(session: Session, model_id: int) -> bool:
    """On PostgreSQL, only one process evaluates a model at a time (others skip it)."""
    return advisory_lock(session, LockKey.DRIFT_EVALUATION, item=model_id)


def _online_step(
    session: Session, *, model: MonitoredModel, state: EvaluatorState
) -> dict[str, Any] | None:
    """Feed new block parts' mean confidence to Page–Hinkley; a note if it signals."""
    parts = session.execute(
        select(BlockCounts.id, BlockCounts.confidence_sum, BlockCounts.confidence_rows)
        .where(
            BlockCounts.model_id == model.id,
            BlockCounts.reference_id == model.reference_id,
            BlockCounts.id > state.last_part_id,
        )
        .order_by(BlockCounts.id)
    ).all()
    if not parts:
        return None
    detector = (
        PageHinkley.from_dict(state.online) if state.online else PageHinkley(**ONLINE_PARAMS)  # type: ignore[arg-type]
    )
    means = [s / n for _, s, n in parts if n]
    changed = detector.update(np.array(means)) if means else False
    state.online = detector.to_dict()
    state.last_part_id = max(pid for pid, _, _ in parts)
    if not changed:
        return None
    return {
        "detector": "page_hinkley",
        "signal": f"mean confidence moved {detector.last_direction}",
        "part_id": state.last_part_id,
    }


def _due_blocks(
    model: MonitoredModel,
    state: EvaluatorState | None,
    now: dt.datetime,
    *,
    fresh_start: int | None = None,
) -> list[int]:
    """The finished blocks whose scheduled evaluation is due (at most MAX_CATCH_UP).

    A fresh schedule (a new model or baseline) starts at the latest finished block,
    or at ``fresh_start``: the first block judged before the write transaction,
    while more blocks may have finished.
    """
    window = WindowSpec.parse(model.window)
    finished, _ = current_blocks(model, window, now)
    if finished < 0:
        return []
    last = state.last_block if state and state.reference_id == model.reference_id else None
    if last is not None:
        start = last + 1
    else:
        start = finished if fresh_start is None else min(fresh_start, finished)
    return list(range(max(start, finished - MAX_CATCH_UP + 1), finished + 1))


def judge_due(
    session: Session, *, model: MonitoredModel, settings: Settings, now: dt.datetime
) -> list[Judgement]:
    """The scheduled windows due for ``model``, judged: reads only (a read-only session)."""
    if model.reference_id is None:
        return []
    state = session.get(EvaluatorState, model.id)
    return [
        _judge_scheduled(session, model=model, settings=settings, block=block, now=now)
        for block in _due_blocks(model, state, now)
    ]


def _judge_scheduled(
    session: Session, *, model: MonitoredModel, settings: Settings, block: int, now: dt.datetime
) -> Judgement:
    return judge_window(
        session,
        model=model,
        settings=settings,
        last_block=block,
        trigger="scheduled",
        now=now,
        scheduled=True,
    )


def evaluate_model_step(
    session: Session,
    *,
    model: MonitoredModel,
    settings: Settings,
    now: dt.datetime,
    judged: Sequence[Judgement] = (),
) -> int:
    """Run the evaluations due for one model; returns how many ran.

    ``judged`` (from :func:`judge_due`, before this transaction) are used for the
    blocks they cover if the model has not changed since; the rest are judged here.
    """
    if model.reference_id is None or not _lock_model(session, model.id):
        return 0
    state = session.get(EvaluatorState, model.id)
    if state is None:
        state = EvaluatorState(model_id=model.id, last_part_id=0, updated_at=now)
        session.add(state)
    ready = {
        j.block: j
        for j in judged
        if j.model_updated_at == model.updated_at and j.values["reference_id"] == model.reference_id
    }
    due = _due_blocks(model, state, now, fresh_start=min(ready, default=None))
    if state.reference_id != model.reference_id:
        # a new baseline: start the schedule (and the online detector) afresh
        state.reference_id = model.reference_id
        state.last_block = None
        state.online = None
    ran = 0
    if due:
        compact_blocks(
            session,
            model_id=model.id,
            reference_id=model.reference_id,
            before_block=due[-1] + 1,
        )
    for block in due:
        judgement = ready.get(block) or _judge_scheduled(
            session, model=model, settings=settings, block=block, now=now
        )
        if record_judgement(session, judgement, model=model, settings=settings, now=now):
            ran += 1
        state.last_block = block
    ran += _online_evaluation(session, model=model, state=state, settings=settings, now=now)
    state.updated_at = now
    return ran


def _online_evaluation(
    session: Session,
    *,
    model: MonitoredModel,
    state: EvaluatorState,
    settings: Settings,
    now: dt.datetime,
) -> int:
    """The window in progress, judged now when the online detector saw confidence change."""
    note = _online_step(session, model=model, state=state)
    if note is None:
        return 0
    judgement = judge_window(
        session,
        model=model,
        settings=settings,
        last_block=current_blocks(model, WindowSpec.parse(model.window), now)[1],
        trigger="confidence_change",
        now=now,
        note=note,
    )
    record_judgement(session, judgement, model=model, settings=settings, now=now)
    return 1


def run_due_evaluations(db: Database, settings: Settings) -> int:
    """The evaluator loop's step: every active model with a reference.

    Per model, the due windows are judged in a read-only session first, so the
    write transaction that stores them (SQLite's one write lock, which ingest
    waits for) lasts milliseconds, not the hundreds a catch-up of ten windows took.
    """
    with db.session(readonly=True) as session:
        ids: Sequence[int] = session.scalars(
            select(MonitoredModel.id).where(
                MonitoredModel.status == "active", MonitoredModel.reference_id.is_not(None)
            )
        ).all()
    ran = 0
    for model_id in ids:
        now = utcnow()
        try:
            with db.session(readonly=True) as session:
                model = session.get(MonitoredModel, model_id)
                judged = (
                    judge_due(session, model=model, settings=settings, now=now) if model else []
                )
            with db.session() as session:
                model = session.get(MonitoredModel, model_id)
                if model is not None:
                    ran += evaluate_model_step(
                        session, model=model, settings=settings, now=now, judged=judged
                    )
        except Exception:
            log.exception("evaluating a model failed", extra={"model_id": model_id})
    return ran
