"""What labelling each flagged record of a batch is worth: the value the label budget samples by.

``v_i = floor + uncertainty + novelty + drift``, shared within a diversity group
(:func:`monitors.sampling.record_value`), from what the rules and the model's
reference already hold:

- **uncertainty**: the record's confidence, margin and entropy (the rules computed them);
- **novelty**: how far its numerical features lie outside the reference's
  ``[min, max]``, in reference ranges;
- **drift**: while a drift incident is open, how over-represented the record's
  bin of each drifted feature is in the incident's last evaluated window against
  the reference (``1 − p_ref/p_win``; the largest over the drifted features);
- **diversity**: flagged records of the batch whose features fall in the same
  reference bins (every feature) share one record's value.

A model without a reference has no ranges and no bins: its values are uncertainty alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.drift.tables import DriftEvaluation, DriftIncident
from app.ingest.parse import ValidatedBatch
from app.ingest.sketches import get_spec
from app.ingest.store import decode_counts
from app.performance.tables import PerformanceIncident
from exceptions_queue.rules import Findings, RuleConfig
from monitors.sampling import diversity_groups, novelty, record_value, uncertainty
from monitors.sketch import SketchSpec
from storage.tables import BlockCounts, MonitoredModel, Reference

Floats = npt.NDArray[np.float64]
# per feature: the drift score of each of its counters
Affinity = dict[str, Floats]

_cache: OrderedDict[tuple[str, int, int, int], Affinity] = OrderedDict()
_lock = threading.Lock()


def _window_counts(session: Session, evaluation: DriftEvaluation, size: int) -> npt.NDArray[Any]:
    total = np.zeros(size, dtype=np.int64)
    for (blob,) in session.execute(
        select(BlockCounts.counts).where(
            BlockCounts.model_id == evaluation.model_id,
            BlockCounts.reference_id == evaluation.reference_id,
            BlockCounts.block >= evaluation.first_block,
            BlockCounts.block <= evaluation.last_block,
        )
    ):
        total += decode_counts(blob)
    return total


def drift_scores(session: Session, model: MonitoredModel, spec: SketchSpec) -> Affinity:
    """Per drifted feature of the model's open drift incident, each counter's affinity score."""
    incident = session.scalar(
        select(DriftIncident).where(
            DriftIncident.model_id == model.id, DriftIncident.status == "open"
        )
    )
    if incident is None or model.reference_id is None:
        return {}
    key = (
        session.get_bind().engine.url.render_as_string(),
        incident.id,
        incident.last_evaluation_id,
        model.reference_id,
    )
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    evaluation = session.get(DriftEvaluation, incident.last_evaluation_id)
    ref_blob = session.scalar(select(Reference.counts).where(Reference.id == model.reference_id))
    scores: Affinity = {}
    if evaluation is not None and evaluation.reference_id == model.reference_id and ref_blob:
        reference = decode_counts(ref_blob)
        window = _window_counts(session, evaluation, spec.size)
        for name in incident.drifted_features:
            if name not in spec.names:
                continue
            part = spec.feature_slice(name)
            ref, win = reference[part].astype(np.float64), window[part].astype(np.float64)
            p_ref = ref / max(ref.sum(), 1.0)
            p_win = win / max(win.sum(), 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                scores[name] = np.where(p_win > p_ref, 1.0 - p_ref / p_win, 0.0)
    with _lock:
        _cache[key] = scores
        while len(_cache) > 64:
            _cache.popitem(last=False)
    return scores


def flagged_values(
    session: Session,
    model: MonitoredModel,
    batch: ValidatedBatch,
    found: Findings,
    config: RuleConfig,
) -> Floats:
    """The value of each flagged record (``found.low_confidence.positions``), in that order."""
    low = found.low_confidence
    positions = low.positions
    if positions.size == 0:
        return np.zeros(0)
    n_labels = max(2, len(model.labels or ())) if model.task == "classification" else 2
    unsure = uncertainty(low.confidence, margin=low.margin, entropy=low.entropy, n_labels=n_labels)
    columns: Mapping[str, npt.NDArray[Any]] = batch.columns.values
    numeric = [
        name
        for name in config.ranges
        if name in columns and np.asarray(columns[name]).dtype == np.float64
    ]
    novel = None
    if numeric:
        x = np.column_stack([np.asarray(columns[n], dtype=np.float64)[positions] for n in numeric])
        novel = novelty(
            x, [config.ranges[n][0] for n in numeric], [config.ranges[n][1] for n in numeric]
        )
    drift = None
    groups = None
    if model.reference_id is not None:
        spec = get_spec(session, model.reference_id)
        codes = {
            f.name: f.codes(columns[f.name][positions]) for f in spec.features if f.name in columns
        }
        if codes:
            groups = diversity_groups(np.column_stack(list(codes.values())))
        scores = drift_scores(session, model, spec)
        if scores:
            drift = np.zeros(positions.size)
            for name, score in scores.items():
                if name in codes:
                    drift = np.maximum(drift, score[codes[name]])
    return record_value(uncertainty=unsure, novelty=novel, drift=drift, groups=groups)


def labels_wanted(session: Session, model_id: int) -> bool:
    """Whether an open drift or performance incident of the model needs labels to be decided."""
    for table in (DriftIncident, PerformanceIncident):
        found = session.scalar(
            select(table.id)
            .where(table.model_id == model_id, table.status == "open", table.needs_labels)
            .limit(1)
        )
        if found is not None:
            return True
    return False
