"""Where stored traffic meets the exception queue: the rules that open tickets.

The rules run over a batch's columns at once (:mod:`exceptions_queue.rules`),
before the ingest transaction (:func:`find_exceptions`: pure computation, so
SQLite's one write lock is not held for it). The tickets they call for go in
inside that transaction, with one bulk insert (:func:`on_batch_stored`), so a
ticket exists exactly when its prediction does. The model's ``TICKETS`` advisory
lock is waited for only under a label budget; a batch never waits to merge its
data-quality breaks into the hour's group tickets: while the lock is held
elsewhere it defers them, and the next holder or the ``quality-fold`` loop
(:func:`fold_deferred_quality`) merges them.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.caching import PerDatabaseCache
from app.catalog import service as catalog
from app.db import Database
from app.ingest.columns import CONFIDENCE, PREDICTION, probability_matrix
from app.ingest.parse import ValidatedBatch
from app.ingest.sketches import get_spec
from app.ingest.store import (
    Reservation,
    RowValues,
    StoredBatch,
    check_model_unchanged,
    copy_payload,
    first_of_each_id,
    reserve,
    row_values,
    store_postgres,
    store_sqlite,
)
from app.ingest.value import Floats, flagged_values, labels_wanted
from app.performance import blocks as performance
from app.settings import Settings
from exceptions_queue import repository, sampling, service
from exceptions_queue.rules import Findings, RuleConfig, evaluate
from monitors.sketch import SketchSpec
from storage.base import utcnow
from storage.sql import POSTGRESQL, LockKey, advisory_lock, dialect
from storage.tables import MonitoredModel, Prediction, Reference

# What a reference says is normal, per reference id (references never change).
_Normal = tuple[dict[str, tuple[float, float]], dict[str, frozenset[str]]]
# keyed by database and reference: ids of different databases are different references
_normal_cache: OrderedDict[tuple[str, int], _Normal] = OrderedDict()
_lock = threading.Lock()


def _normal(session: Session, reference_id: int) -> _Normal:
    """Numerical ranges and complete category sets of a reference."""
    key = (session.get_bind().engine.url.render_as_string(), reference_id)
    with _lock:
        hit = _normal_cache.get(key)
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
        _normal_cache[key] = normal
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
    if model.task != "classification":
        return None
    return probability_matrix(model.labels or [], given)


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


@dataclass(frozen=True)
class BatchFindings:
    """What the rules found in a whole validated batch, and under which settings."""

    found: Findings
    config: RuleConfig
    model_updated_at: dt.datetime
    reference_id: int | None

    def still_valid_for(self, model: MonitoredModel) -> bool:
        """Whether ``model`` (as read in the write transaction) is the one they were found for."""
        return self.model_updated_at == model.updated_at and self.reference_id == model.reference_id


def find_exceptions(
    model: MonitoredModel, batch: ValidatedBatch, config: RuleConfig
) -> BatchFindings:
    """Every rule over every record of ``batch`` (duplicates are dropped when tickets open).

    ``config`` is :func:`rule_config` of ``model``.
    """
    values = {k: v for k, v in batch.columns.values.items() if k != PREDICTION}
    values[CONFIDENCE] = batch.confidence
    probabilities = (
        _probabilities(model, batch.probabilities or [None] * batch.rows)
        if config.margin_threshold is not None or config.entropy_threshold is not None
        else None
    )
    # seeded by the batch: the audit draw is reproducible from the stored rows
    seed = [model.id, zlib.crc32(batch.client_ids[0].encode())] if batch.client_ids else model.id
    found = evaluate(values, probabilities, config, np.random.default_rng(seed))
    return BatchFindings(found, config, model.updated_at, model.reference_id)


def _candidates(
    found: Findings,
    config: RuleConfig,
    id_of: Mapping[int, int],
    client_ids: Sequence[str],
    outputs: Sequence[Any],
    values: npt.NDArray[np.float64] | None = None,
    audit_ceiling: float = 0.0,
) -> tuple[list[service.NewTicket], list[service.QualityGroup]]:
    """Tickets for the stored records; ``id_of`` maps a batch position to its new row's id.

    ``values`` (one per flagged record) are what a label budget samples them by;
    audit candidates are drawn up to ``audit_ceiling`` (at least the audit rate).
    """
    new = _low_confidence(found, config, id_of, client_ids, outputs, values)
    new += _audits(found, config, id_of, client_ids, outputs, max(audit_ceiling, config.audit_rate))
    return new, _quality_groups(found, id_of, client_ids)


def _low_confidence(
    found: Findings,
    config: RuleConfig,
    id_of: Mapping[int, int],
    client_ids: Sequence[str],
    outputs: Sequence[Any],
    values: npt.NDArray[np.float64] | None,
) -> list[service.NewTicket]:
    low = found.low_confidence
    thresholds = {
        "confidence": config.confidence_threshold,
        "margin": config.margin_threshold,
        "entropy": config.entropy_threshold,
    }
    new: list[service.NewTicket] = []
    for k, j in enumerate(low.positions.tolist()):
        if j not in id_of:  # a duplicate: it was stored (and judged) before
            continue
        rule = low.rules[k]
        value = {"confidence": low.confidence, "margin": low.margin, "entropy": low.entropy}[rule][
            k
        ]
        relation = "above" if rule == "entropy" else "below"
        new.append(
            service.NewTicket(
                kind="low_confidence",
                group_key=f"pred:{id_of[j]}",
                reason=f"{rule} {value:.3f} {relation} the threshold {thresholds[rule]}",
                details={
                    "rule": rule,
                    "threshold": thresholds[rule],
                    "confidence": _num(low.confidence[k]),
                    "margin": _num(low.margin[k]),
                    "entropy": _num(low.entropy[k]),
                    "prediction": outputs[j],
                },
                prediction_id=id_of[j],
                client_id=client_ids[j],
                inclusion_probability=1.0,
                sampling_stratum=sampling.FLAGGED,
                value=None if values is None else float(values[k]),
            )
        )
    return new


def _audits(
    found: Findings,
    config: RuleConfig,
    id_of: Mapping[int, int],
    client_ids: Sequence[str],
    outputs: Sequence[Any],
    ceiling: float,
) -> list[service.NewTicket]:
    """Audit candidates: unflagged records whose draw is below ``ceiling`` (the audit rate,
    or the most it can be raised to); :func:`exceptions_queue.sampling.admit` keeps
    those below the rate in force."""
    if ceiling <= config.audit_rate or found.draw.size == 0:
        positions = found.audit.tolist()
    else:
        unflagged = np.ones(found.draw.size, dtype=bool)
        unflagged[found.low_confidence.positions] = False
        positions = np.flatnonzero(unflagged & (found.draw < ceiling)).tolist()
    return [
        service.NewTicket(
            kind="audit",
            group_key=f"pred:{id_of[j]}",
            reason=(
                f"audit sample ({config.audit_rate:.1%} of confident predictions): "
                "checked by a person so retraining data is not only hard cases"
            ),
            details={"audit": True, "rate": config.audit_rate, "prediction": outputs[j]},
            prediction_id=id_of[j],
            client_id=client_ids[j],
            inclusion_probability=config.audit_rate,
            sampling_stratum=sampling.UNFLAGGED,
            draw=float(found.draw[j]) if found.draw.size else None,
        )
        for j in positions
        if j in id_of
    ]


def _quality_groups(
    found: Findings, id_of: Mapping[int, int], client_ids: Sequence[str]
) -> list[service.QualityGroup]:
    groups: dict[str, service.QualityGroup] = {}
    for brk in found.quality:
        stored = [j for j in brk.positions.tolist() if j in id_of]
        if not stored:
            continue
        group = groups.setdefault(brk.feature, service.QualityGroup(brk.feature, {}))
        group.counts[brk.rule] = group.counts.get(brk.rule, 0) + len(stored)
        # the examples are the first breaks' values; those of duplicates are left out
        for j, value in zip(brk.positions.tolist(), brk.examples, strict=False):
            if j in id_of:
                group.examples.append(
                    {
                        "prediction_id": id_of[j],
                        "client_id": client_ids[j],
                        "rule": brk.rule,
                        "value": value,
                    }
                )
    return list(groups.values())


def on_batch_stored(
    session: Session,
    model: MonitoredModel,
    stored: StoredBatch,
    *,
    now: dt.datetime,
    findings: BatchFindings | None = None,
) -> int:
    """Open the tickets a stored batch calls for; returns how many were opened.

    ``findings`` (from :func:`find_exceptions`, before the transaction) are used
    when they were found for this same ``model``; else the rules run here.
    """
    if not stored.prediction_ids:
        return 0
    batch = stored.batch
    if findings is None or not findings.still_valid_for(model):
        findings = find_exceptions(model, batch, rule_config(session, model))
    performance.on_batch_stored(
        session, model, stored, flagged=findings.found.low_confidence.positions, now=now
    )
    id_of = dict(zip(stored.new_positions.tolist(), stored.prediction_ids, strict=True))
    budget = sampling.Budget.of(service.options_of(model))
    values, plan = (
        _valued(session, model, batch, findings, id_of) if budget is not None else (None, None)
    )
    new, groups = _candidates(
        findings.found,
        findings.config,
        id_of,
        batch.client_ids,
        batch.outputs,
        values,
        audit_ceiling=sampling.MAX_RAISED_AUDIT_RATE if plan is not None and plan.boost else 0.0,
    )
    if not groups and not new:
        return 0
    new = _quality_tickets(session, model, groups, budget=budget, now=now) + new
    if not new:
        return 0
    return service.open_tickets(
        session,
        model_id=model.id,
        candidates=new,
        now=now,
        budget=budget,
        rng=_rng(model, batch),
        audit=plan,
    )


def _quality_tickets(
    session: Session,
    model: MonitoredModel,
    groups: list[service.QualityGroup],
    *,
    budget: sampling.Budget | None,
    now: dt.datetime,
) -> list[service.NewTicket]:
    """Take the model's ``TICKETS`` lock if this batch needs it; the data-quality tickets to open.

    A label budget (read, then spent) must see every earlier batch of the model:
    its ingest transactions queue on the lock, for the ticket statements and
    their commit only. Without one, only merging the data-quality groups into
    the hour's group tickets (read, then updated) needs it, and never waits: a
    batch that finds it held defers its groups (returning none) to the next
    holder — the model's next batch that gets it, or the ``quality-fold`` loop
    (:func:`fold_deferred_quality`). Low-confidence and audit tickets need no
    lock: their insert is idempotent by group key.
    """
    if budget is not None:
        advisory_lock(session, LockKey.TICKETS, item=model.id, wait=True)
    elif not groups:
        return []
    elif not advisory_lock(session, LockKey.TICKETS, item=model.id, wait=False):
        service.defer_quality_groups(session, model_id=model.id, groups=groups, now=now)
        return []
    # on SQLite the try-lock always succeeds, so nothing is ever deferred: no take
    deferred = dialect(session) == POSTGRESQL
    return service.fold_quality_groups(
        session, model_id=model.id, groups=groups, now=now, take_deferred=deferred
    )


def fold_deferred_quality(db: Database, settings: Settings) -> int:
    """Background step: fold every model's deferred data-quality groups into its tickets.

    So nothing stays deferred when a model's ingest stops. A model whose
    ``TICKETS`` lock is held is skipped (its holder or the next step folds);
    returns how many models were folded.
    """
    with db.session(readonly=True) as session:
        models = service.models_with_deferred_quality(session)
    folded = 0
    for model_id in models:
        with db.session() as session:
            if not advisory_lock(session, LockKey.TICKETS, item=model_id, wait=False):
                continue
            now = utcnow()
            new = service.fold_quality_groups(session, model_id=model_id, now=now)
            service.open_tickets(session, model_id=model_id, candidates=new, now=now)
            folded += 1
    return folded


def _valued(
    session: Session,
    model: MonitoredModel,
    batch: ValidatedBatch,
    findings: BatchFindings,
    id_of: dict[int, int],
) -> tuple[Floats, sampling.AuditPlan]:
    """Under a label budget: the flagged records' values, and the plan of audits (the
    unflagged records, at the audit rate, raised while performance needs labels)."""
    values = flagged_values(session, model, batch, findings.found, findings.config)
    flagged = set(findings.found.low_confidence.positions.tolist())
    plan = sampling.AuditPlan(
        rate=findings.config.audit_rate,
        unflagged=sum(1 for j in id_of if j not in flagged),
        boost=labels_wanted(session, model.id),
    )
    return values, plan


def _rng(model: MonitoredModel, batch: ValidatedBatch) -> np.random.Generator:
    """The budget's draw, seeded by the batch (like the audit's): reproducible from the rows."""
    first = zlib.crc32(batch.client_ids[0].encode()) if batch.client_ids else 0
    return np.random.default_rng([model.id, first, 1])


@dataclass(frozen=True)
class Target:
    """What validating a batch for a model needs: the model, its reference's sketch, its rules."""

    model: MonitoredModel
    spec: SketchSpec | None
    rules: RuleConfig


# The models ingest validated against, by name. A cached model is used only while
# it is the stored one: the write transaction checks its ``updated_at`` and status
# (every change of a model sets ``updated_at``), as does PostgreSQL's reservation,
# and a changed model is read again (app.ingest.store.ModelChanged).
_targets: PerDatabaseCache[Target] = PerDatabaseCache(256)


def cached_target(db: Database, name: str) -> Target | None:
    return _targets.get(db.engine, name)


def forget_target(db: Database, name: str) -> None:
    _targets.discard(db.engine, name)


def read_target(db: Database, name: str, authorize: Callable[[Session], object]) -> Target:
    """The active model called ``name`` and what validating for it needs, read (after the
    caller's key check, ``authorize``) and cached."""
    with db.session(readonly=True) as session:
        authorize(session)
        model = catalog.active_model(session, name)
        spec = get_spec(session, model.reference_id) if model.reference_id else None
        target = Target(model, spec, rule_config(session, model))
    _targets.put(db.engine, name, target)
    return target


@dataclass
class PreparedBatch:
    """A validated batch and everything its write transaction needs, computed before it."""

    model: MonitoredModel  # as validated against (checked again in the transaction)
    batch: ValidatedBatch
    values: RowValues
    findings: BatchFindings
    now: dt.datetime
    # PostgreSQL: the reserved numbers and ids, and the rows in COPY's format
    reservation: Reservation | None = None
    payload: bytes = b""
    # SQLite: the caller's key check, when not made yet (made in the write transaction)
    authorize: Callable[[Session], object] | None = None


def prepare(
    db: Database,
    model: MonitoredModel,
    batch: ValidatedBatch,
    *,
    spec: SketchSpec | None,
    rules: RuleConfig,
    now: dt.datetime,
    authorize: Callable[[Session], object] | None = None,
) -> PreparedBatch | StoredBatch:
    """All of a batch's write that can be done before its transaction.

    The rows' values, their sketch counts and the rules' findings; on
    PostgreSQL also which of its ids are stored already and the reservation of
    sequence numbers and row ids (a transaction of its own, app.ingest.store)
    and the COPY buffer, or a :class:`StoredBatch` of nothing when every record
    is a duplicate. ``authorize`` (the caller's key check, when not made yet)
    runs first in that transaction (on SQLite, in the write transaction).

    SQLite reads nothing first: the insert skips stored ids and says how many
    rows it added, and a batch holding any stored id (a client's retry) is rolled
    back and written again with its ids checked under the write lock
    (``store_sqlite``'s recheck).
    """
    wanted = first_of_each_id(batch.client_ids)
    findings = find_exceptions(model, batch, rules)
    if db.is_sqlite:
        values = row_values(model, batch, on_sqlite=True, now=now, positions=wanted, spec=spec)
        return PreparedBatch(model, batch, values, findings, now, authorize=authorize)
    values = row_values(model, batch, on_sqlite=False, now=now, positions=wanted, spec=spec)
    reservation = reserve(db, model, batch, wanted, authorize=authorize)
    if not reservation.positions:
        return StoredBatch(batch, np.empty(0, dtype=np.intp), [], batch.rows)
    payload = copy_payload(values, reservation)
    return PreparedBatch(model, batch, values, findings, now, reservation, payload)


def write(
    session: Session, prepared: PreparedBatch, *, recheck: bool = False
) -> tuple[StoredBatch, int]:
    """The write transaction of a prepared batch: rows, block counts, tickets.

    Returns what was stored and how many tickets were opened. Raises
    :class:`app.ingest.store.ModelChanged` if the model changed since it was
    read, and on SQLite :class:`app.ingest.store.Raced` (see ``store_sqlite``).
    """
    model, batch, now = prepared.model, prepared.batch, prepared.now
    if prepared.authorize is not None:
        prepared.authorize(session)
    check_model_unchanged(session, model)
    if prepared.reservation is None:
        stored = store_sqlite(session, model, batch, prepared.values, now=now, recheck=recheck)
    else:
        reservation = prepared.reservation
        stored = store_postgres(
            session,
            model,
            batch,
            reservation,
            prepared.payload,
            now=now,
            counts=prepared.values.counts
            if reservation.positions == prepared.values.positions
            else None,
            duplicates=batch.rows - len(reservation.positions),
        )
    exceptions = on_batch_stored(session, model, stored, now=now, findings=prepared.findings)
    return stored, exceptions


def on_feedback(
    session: Session, model: MonitoredModel, predictions: Sequence[Prediction], *, now: dt.datetime
) -> int:
    """Open tickets for ground truth that contradicts the prediction; returns how many."""
    new = service.feedback_tickets(model, predictions)
    if not new:
        return 0
    # feedback may be sent again: skip the tickets that exist
    existing = repository.existing_groups(
        session,
        model_id=model.id,
        kind="feedback_mismatch",
        group_keys=[t.group_key for t in new],
    )
    new = [t for t in new if t.group_key not in existing]
    if not new:
        return 0
    # feedback mismatches are outside the label budget: every one is opened, with
    # no lock (the insert skips a ticket another transaction opened meanwhile)
    return service.open_tickets(session, model_id=model.id, candidates=new, now=now)
