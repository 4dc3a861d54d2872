"""Where stored traffic meets the exception queue: the rules that open tickets.

Called inside the ingest transaction, so a ticket exists exactly when its
prediction does. The rules run over the batch's columns at once
(:mod:`exceptions_queue.rules`); the tickets they call for go in with one bulk
insert.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.columns import CONFIDENCE, PREDICTION
from app.models import MonitoredModel, Prediction, Reference
from app.sketches import get_spec
from exceptions_queue import repository, service
from exceptions_queue.rules import Findings, RuleConfig, evaluate

if TYPE_CHECKING:
    from app.ingest import StoredBatch

# What a reference says is normal, per reference id (references never change).
_Normal = tuple[dict[str, tuple[float, float]], dict[str, frozenset[str]]]
_normal_cache: OrderedDict[int, _Normal] = OrderedDict()
_lock = threading.Lock()


def _normal(session: Session, reference_id: int) -> _Normal:
    """Numerical ranges and complete category sets of a reference."""
    with _lock:
        hit = _normal_cache.get(reference_id)
        if hit is not None:
            return hit
    summary: dict[str, Any] = (
        session.scalar(select(Reference.summary).where(Reference.id == reference_id)) or {}
    )
    spec = get_spec(session, reference_id)
    ranges: dict[str, tuple[float, float]] = {}
    categories: dict[str, frozenset[str]] = {}
    for name, entry in summary.items():
        if name.startswith("__"):
            continue
        if entry.get("type") == "numerical" and "min" in entry:
            ranges[name] = (float(entry["min"]), float(entry["max"]))
        elif entry.get("type") == "categorical":
            distinct = int(entry.get("distinct", 0))
            top = [t["value"] for t in entry.get("top", [])]
            if distinct and len(top) >= distinct:
                categories[name] = frozenset(top)
            else:
                try:
                    known = spec.feature(name).categories
                except (KeyError, ValueError):
                    continue
                # a capped category list cannot say a category was never seen
                if distinct and len(known) >= distinct:
                    categories[name] = frozenset(known)
    normal = (ranges, categories)
    with _lock:
        _normal_cache[reference_id] = normal
        while len(_normal_cache) > 64:
            _normal_cache.popitem(last=False)
    return normal


def rule_config(session: Session, model: MonitoredModel) -> RuleConfig:
    opts = service.options_of(model)
    ranges: Mapping[str, tuple[float, float]] = {}
    categories: Mapping[str, frozenset[str]] = {}
    if model.reference_id is not None:
        ranges, categories = _normal(session, model.reference_id)
    return RuleConfig(
        confidence_threshold=model.confidence_threshold,
        margin_threshold=opts.margin_threshold,
        entropy_threshold=opts.entropy_threshold,
        audit_rate=opts.audit_rate,
        out_of_range_tolerance=opts.out_of_range_tolerance,
        required=tuple(f["name"] for f in model.features if f.get("required")),
        ranges=ranges,
        categories=categories,
    )


def _probabilities(
    model: MonitoredModel, given: Sequence[Mapping[str, float] | None]
) -> npt.NDArray[np.float64] | None:
    labels = model.labels or []
    if model.task != "classification" or not any(given):
        return None
    nan_row = [math.nan] * len(labels)
    return np.array(
        [[p.get(label, 0.0) for label in labels] if p else nan_row for p in given],
        dtype=np.float64,
    )


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def _candidates(
    found: Findings,
    config: RuleConfig,
    ids: Sequence[int],
    client_ids: Sequence[str],
    outputs: Sequence[Any],
) -> tuple[list[service.NewTicket], list[service.QualityGroup]]:
    low = found.low_confidence
    thresholds = {
        "confidence": config.confidence_threshold,
        "margin": config.margin_threshold,
        "entropy": config.entropy_threshold,
    }
    new: list[service.NewTicket] = []
    for k, j in enumerate(low.positions.tolist()):
        rule = low.rules[k]
        value = {"confidence": low.confidence, "margin": low.margin, "entropy": low.entropy}[rule][
            k
        ]
        relation = "above" if rule == "entropy" else "below"
        new.append(
            service.NewTicket(
                kind="low_confidence",
                group_key=f"pred:{ids[j]}",
                reason=f"{rule} {value:.3f} {relation} the threshold {thresholds[rule]}",
                details={
                    "rule": rule,
                    "threshold": thresholds[rule],
                    "confidence": _num(low.confidence[k]),
                    "margin": _num(low.margin[k]),
                    "entropy": _num(low.entropy[k]),
                    "prediction": outputs[j],
                },
                prediction_id=ids[j],
                client_id=client_ids[j],
            )
        )
    for j in found.audit.tolist():
        new.append(
            service.NewTicket(
                kind="audit",
                group_key=f"pred:{ids[j]}",
                reason=(
                    f"audit sample ({config.audit_rate:.1%} of confident predictions): "
                    "checked by a person so retraining data is not only hard cases"
                ),
                details={"audit": True, "rate": config.audit_rate, "prediction": outputs[j]},
                prediction_id=ids[j],
                client_id=client_ids[j],
            )
        )
    groups: dict[str, service.QualityGroup] = {}
    for brk in found.quality:
        group = groups.setdefault(brk.feature, service.QualityGroup(brk.feature, {}))
        group.counts[brk.rule] = group.counts.get(brk.rule, 0) + len(brk.positions)
        for j, value in zip(brk.positions.tolist(), brk.examples, strict=False):
            group.examples.append(
                {
                    "prediction_id": ids[j],
                    "client_id": client_ids[j],
                    "rule": brk.rule,
                    "value": value,
                }
            )
    return new, list(groups.values())


def on_batch_stored(
    session: Session, model: MonitoredModel, stored: StoredBatch, *, now: dt.datetime
) -> int:
    """Open the tickets a stored batch calls for; returns how many were opened."""
    if not stored.prediction_ids:
        return 0
    batch = stored.batch
    positions = stored.new_positions
    config = rule_config(session, model)
    whole = len(positions) == batch.columns.rows  # no duplicates: no copy of the columns
    columns = (batch.columns if whole else batch.columns.take(positions)).values
    values = {k: v for k, v in columns.items() if k != PREDICTION}
    values[CONFIDENCE] = batch.confidence[positions]
    probabilities = (
        _probabilities(model, [batch.records[i].probabilities for i in positions.tolist()])
        if config.margin_threshold is not None or config.entropy_threshold is not None
        else None
    )
    # seeded by the batch: the audit draw is reproducible from the stored rows
    rng = np.random.default_rng([model.id, stored.prediction_ids[0]])
    found = evaluate(values, probabilities, config, rng)
    client_ids = [batch.client_ids[i] for i in positions.tolist()]
    outputs = [batch.outputs[i] for i in positions.tolist()]
    new, groups = _candidates(found, config, stored.prediction_ids, client_ids, outputs)
    if groups:
        new = service.merge_quality_groups(session, model_id=model.id, groups=groups, now=now) + new
    if not new:
        return 0
    return service.open_tickets(
        session,
        model_id=model.id,
        candidates=new,
        now=now,
        budget=service.options_of(model).ticket_budget_per_hour,
    )


def on_feedback(
    session: Session, model: MonitoredModel, predictions: Sequence[Prediction], *, now: dt.datetime
) -> int:
    """Open tickets for ground truth that contradicts the prediction; returns how many."""
    new = service.feedback_tickets(model, predictions)
    if not new:
        return 0
    # feedback may be sent again: skip what exists before spending budget on it
    existing = repository.existing_groups(
        session,
        model_id=model.id,
        kind="feedback_mismatch",
        group_keys=[t.group_key for t in new],
    )
    new = [t for t in new if t.group_key not in existing]
    return service.open_tickets(
        session,
        model_id=model.id,
        candidates=new,
        now=now,
        budget=service.options_of(model).ticket_budget_per_hour,
    )
