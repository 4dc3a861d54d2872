"""Labels into per-block sums, in proportion to the labels: never a rescan of raw rows.

Ground truth (POST /feedback) updates the *realized* sums of its prediction's
block: the new label's sums in, the label it replaced out. Reviewers' labels
update the *audited* sums, weighted by the inclusion probability of the ticket
that chose the record; :class:`~app.performance.tables.PerformanceLabel` keeps
what each prediction contributes now, so a later label (an adjudication, an
undo) takes exactly that out again. Drift samples and feedback-mismatch tickets
are not a probability sample and never enter the audited sums; labels on a
drift ticket's sample are counted apart (``drift_sample`` parts), so a window
reports how many it has without mixing them into the unbiased estimate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.db import Database
from app.ingest.columns import probability_matrix
from app.performance.blocks import (
    AUDITED,
    DRIFT_SAMPLE,
    REALIZED,
    Key,
    blocks_of,
    group,
    insert_parts,
    part_row,
    version_key,
)
from app.performance.fitting import label_spec
from app.performance.tables import PerformanceLabel, PerformanceLabelChange
from exceptions_queue.sampling import DRIFT_SAMPLE as DRIFT_STRATUM
from exceptions_queue.sampling import PROBABILITY_STRATA
from exceptions_queue.tables import Label, Ticket
from monitors.performance import (
    AuditSums,
    audit_classification,
    audit_regression,
    labelled_classification,
    labelled_regression,
)
from monitors.window import WindowSpec
from storage.base import utcnow
from storage.sql import LockKey, advisory_lock, upsert
from storage.tables import LabelSchema, MonitoredModel, Prediction

# the kinds of ticket that choose their record by a probability sample
SAMPLED_KINDS = ("low_confidence", "audit")


@dataclass(frozen=True)
class Ground:
    """A prediction's ground truth changing: the label before (None: none) and after."""

    prediction: Prediction
    old: Any
    new: Any


def _keys(window: WindowSpec, rows: Sequence[Any]) -> list[Key]:
    blocks = blocks_of(
        window, np.array([r.seq for r in rows], dtype=np.int64), [r.ts for r in rows]
    )
    return list(zip(blocks.tolist(), [version_key(r.model_version) for r in rows], strict=True))


def _realized(model: LabelSchema, rows: Sequence[Prediction], labels: Sequence[Any]) -> Any:
    """Realized sums of ``rows`` labelled ``labels``."""
    predicted = [r.prediction for r in rows]
    if model.task == "classification":
        return labelled_classification(
            label_spec(tuple(model.labels or ())),
            np.array(labels, dtype=object),
            np.array(predicted, dtype=object),
            probabilities=probability_matrix(model.labels or [], [r.probabilities for r in rows]),
            confidence=np.array(
                [np.nan if r.confidence is None else r.confidence for r in rows], dtype=np.float64
            ),
        )
    return labelled_regression(
        np.array(labels, dtype=np.float64), np.array(predicted, dtype=np.float64)
    )


def on_feedback(
    session: Session, model: MonitoredModel, changes: Sequence[Ground], *, now: dt.datetime
) -> None:
    """Move each prediction's realized contribution from its old ground truth to its new one."""
    changes = [c for c in changes if c.old != c.new]
    if not changes:
        return
    window = WindowSpec.parse(model.window)
    keys = _keys(window, [c.prediction for c in changes])
    rows = []
    for key, at in group(keys).items():
        picked = [changes[i] for i in at.tolist()]
        delta = _realized(model, [c.prediction for c in picked], [c.new for c in picked])
        before = [c for c in picked if c.old is not None]
        if before:
            delta = delta - _realized(
                model, [c.prediction for c in before], [c.old for c in before]
            )
        rows.append(part_row(model.id, key, REALIZED, delta, now))
    insert_parts(session, rows)


# --------------------------------------------------------------------------- reviewers' labels
@dataclass(frozen=True)
class _Counted:
    """What one prediction adds to the audited sums: where, how chosen, labelled what."""

    block: int
    model_version: str
    stratum: str
    inclusion_probability: float
    label: Any
    prediction: Any


def _audited(task: str, counted: Sequence[_Counted]) -> Any:
    strata = [c.stratum for c in counted]
    inclusion = [c.inclusion_probability for c in counted]
    labels = [c.label for c in counted]
    predicted = [c.prediction for c in counted]
    if task == "classification":
        return audit_classification(strata, inclusion, labels, predicted)
    return audit_regression(strata, inclusion, labels, predicted)


def _designs(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, float]]:
    """How each prediction was chosen for review, if by a probability sample."""
    rows = session.execute(
        select(Ticket.prediction_id, Ticket.sampling_stratum, Ticket.inclusion_probability)
        .where(
            Ticket.prediction_id.in_(ids),
            Ticket.kind.in_(SAMPLED_KINDS),
            Ticket.inclusion_probability.is_not(None),
            Ticket.sampling_stratum.in_(PROBABILITY_STRATA),
        )
        .order_by(Ticket.id)
    )
    return {
        int(pid): (str(stratum), float(pi))
        for pid, stratum, pi in rows
        if pid is not None and pi is not None
    }


def _drift_sampled(session: Session, ids: Sequence[int]) -> dict[int, Any]:
    """The current label of each of these predictions that a drift ticket's sample holds
    and a reviewer labelled on that ticket (the latest wins)."""
    if not ids:
        return {}
    return {
        int(pid): label
        for pid, label in session.execute(
            select(Label.prediction_id, Label.label)
            .join(Ticket, Ticket.id == Label.ticket_id)
            .where(
                Label.prediction_id.in_(list(ids)),
                Label.status == "current",
                Ticket.sampling_stratum == DRIFT_STRATUM,
            )
            .order_by(Label.id)
        )
    }


def _wanted(session: Session, window: WindowSpec, ids: Sequence[int]) -> dict[int, _Counted]:
    """What each of these predictions should add now: to the audited sums when a
    probability sample chose it, else to the drift-sample count when a drift ticket's
    sample holds it."""
    designs = _designs(session, ids)
    current: dict[int, Any] = {}
    if designs:
        current = {
            int(pid): label
            for pid, label in session.execute(
                select(Label.prediction_id, Label.label)
                .where(Label.prediction_id.in_(list(designs)), Label.status == "current")
                .order_by(Label.id)  # the latest current label wins
            )
        }
    drifted = _drift_sampled(session, [i for i in ids if i not in designs])
    for pid, label in drifted.items():
        designs[pid] = (DRIFT_STRATUM, 1.0)
        current[pid] = label
    if not current:
        return {}
    rows = list(
        session.execute(
            select(
                Prediction.id,
                Prediction.seq,
                Prediction.ts,
                Prediction.prediction,
                Prediction.model_version,
            ).where(Prediction.id.in_(list(current)))
        )
    )
    out = {}
    for row, (block, version) in zip(rows, _keys(window, rows), strict=True):
        stratum, pi = designs[row.id]
        out[int(row.id)] = _Counted(block, version, stratum, pi, current[row.id], row.prediction)
    return out


def note_label_changes(
    session: Session, *, model_id: int, prediction_ids: Iterable[int], now: dt.datetime
) -> None:
    """Note predictions whose human label changed: their audited sums move at the next sync.

    One insert in the reviewer's transaction; :func:`sync_pending` does the rest
    in batches, before any read of the model's performance.
    """
    rows = [
        {"model_id": model_id, "prediction_id": pid, "created_at": now}
        for pid in sorted(set(prediction_ids))
    ]
    if rows:
        session.execute(insert(PerformanceLabelChange), rows)


def sync_pending(session: Session, *, model_id: int, now: dt.datetime) -> int:
    """Move the audited sums of every noted label change of a model; returns how many moved.

    The model's changes are taken (deleted) under its ``PERFORMANCE_LABELS`` lock,
    so two processes never move the same prediction's sums from the same ledger.
    """
    advisory_lock(session, LockKey.PERFORMANCE_LABELS, item=model_id, wait=True)
    taken = session.scalars(
        delete(PerformanceLabelChange)
        .where(PerformanceLabelChange.model_id == model_id)
        .returning(PerformanceLabelChange.prediction_id)
    ).all()
    return sync_human_labels(session, model_id=model_id, prediction_ids=taken, now=now)


def sync_all_pending(db: Database) -> int:
    """Before a read of performance: move every model's noted label changes (each model in
    a transaction of its own). Costs one indexed read when nothing is pending."""
    with db.session(readonly=True) as session:
        models = session.scalars(select(PerformanceLabelChange.model_id).distinct()).all()
    moved = 0
    for model_id in models:
        with db.session() as session:
            moved += sync_pending(session, model_id=model_id, now=utcnow())
    return moved


def sync_human_labels(
    session: Session, *, model_id: int, prediction_ids: Iterable[int], now: dt.datetime
) -> int:
    """Bring the audited sums of these predictions in line with their current labels.

    A prediction counts when a probability-sampled ticket (low confidence or
    audit) chose it and it has a current human label (the latest: an
    adjudication replaces the first). Returns how many contributions changed.
    """
    ids = sorted(set(prediction_ids))
    if not ids:
        return 0
    task, window_dict = session.execute(
        select(MonitoredModel.task, MonitoredModel.window).where(MonitoredModel.id == model_id)
    ).one()
    wanted = _wanted(session, WindowSpec.parse(window_dict), ids)
    ledger = {
        row.prediction_id: row
        for row in session.scalars(
            select(PerformanceLabel).where(PerformanceLabel.prediction_id.in_(ids))
        )
    }
    taken, added, changed = _changes(ids, ledger, wanted)
    if not changed:
        return 0
    parts = _moved_sums(task, taken, list(added.values()))
    insert_parts(
        session,
        [part_row(model_id, key, kind, sums, now) for (kind, key), sums in parts.items()],
    )
    _write_ledger(
        session, model_id, gone=[pid for pid in ledger if pid not in added], added=added, now=now
    )
    return changed


def _changes(
    ids: Iterable[int], ledger: dict[int, PerformanceLabel], wanted: dict[int, _Counted]
) -> tuple[list[_Counted], dict[int, _Counted], int]:
    """What the ledger counts that must be taken out, what must be added, how many moved."""
    taken: list[_Counted] = []
    added: dict[int, _Counted] = {}
    changed = 0
    for pid in ids:
        old = ledger.get(pid)
        before = None if old is None else _counted(old)
        after = wanted.get(pid)
        if before == after:
            continue
        changed += 1
        if before is not None:
            taken.append(before)
        if after is not None:
            added[pid] = after
    return taken, added, changed


def _moved_sums(
    task: str, taken: list[_Counted], added: list[_Counted]
) -> dict[tuple[str, Key], AuditSums]:
    """The audited sums to add per kind (audited, drift sample), block and model version:
    what was taken out negative."""
    parts: dict[tuple[str, Key], AuditSums] = {}
    for sign, counted in ((-1.0, taken), (1.0, added)):
        for key, at in group((c.block, c.model_version) for c in counted).items():
            for kind in (AUDITED, DRIFT_SAMPLE):
                these = [counted[i] for i in at.tolist() if _kind_of(counted[i]) == kind]
                if not these:
                    continue
                sums = _audited(task, these)
                have = parts.get((kind, key), AuditSums.empty())
                parts[(kind, key)] = have + sums if sign > 0 else have - sums
    return parts


def _write_ledger(
    session: Session,
    model_id: int,
    *,
    gone: list[int],
    added: dict[int, _Counted],
    now: dt.datetime,
) -> None:
    """The ledger of counted labels: rows no longer counted deleted, the new ones upserted."""
    if gone:
        session.execute(delete(PerformanceLabel).where(PerformanceLabel.prediction_id.in_(gone)))
    if not added:
        return
    stmt = upsert(session, PerformanceLabel)
    stmt = stmt.on_conflict_do_update(
        index_elements=["prediction_id"],
        set_={
            c: getattr(stmt.excluded, c)
            for c in (
                "block",
                "model_version",
                "stratum",
                "inclusion_probability",
                "label",
                "prediction",
                "updated_at",
            )
        },
    )
    session.execute(
        stmt,
        [
            {
                "prediction_id": pid,
                "model_id": model_id,
                "block": c.block,
                "model_version": c.model_version,
                "stratum": c.stratum,
                "inclusion_probability": c.inclusion_probability,
                "label": c.label,
                "prediction": c.prediction,
                "updated_at": now,
            }
            for pid, c in added.items()
        ],
    )


def _kind_of(counted: _Counted) -> str:
    """Where a prediction's label counts: the audited sums or the drift-sample count."""
    return DRIFT_SAMPLE if counted.stratum == DRIFT_STRATUM else AUDITED


def _counted(row: PerformanceLabel) -> _Counted:
    return _Counted(
        row.block,
        row.model_version,
        row.stratum,
        row.inclusion_probability,
        row.label,
        row.prediction,
    )
