"""The background step that fits DLE's loss models, off the reference upload's request.

Fitting six gradient-boosted models on a large reference takes seconds to
minutes; the upload stores the reference's features, predictions and labels
(``PerformanceReference.fit_data``, status ``fitting``) and returns at once. This
step, run by every process's background loops, claims one pending reference at
a time in the database (a claim older than ``CLAIM_SECONDS`` — a process that
died mid-fit — is taken over), fits outside any transaction, then stores the
models, marks the reference ready and, when it is still the model's reference,
adds the label-free sums of the predictions already in the live window (those
ingested while it was fitting got none), so the current window's estimate
covers all its rows at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from app.db import Database
from app.ingest.columns import PREDICTION
from app.performance.blocks import (
    ESTIMATED,
    blocks_of,
    group_by_block,
    insert_parts,
    part_row,
)
from app.performance.fitting import FITTING, READY, fit_loss_model
from app.performance.tables import PerformancePart, PerformanceReference
from app.reference.service import iter_prediction_chunks, live_window_query, prediction_columns
from app.settings import Settings
from monitors.performance import LossModel, dle_sums
from monitors.window import WindowSpec
from storage.base import utcnow
from storage.tables import MonitoredModel

CLAIM_SECONDS = 1800


def _claim(session: Session, now: dt.datetime) -> tuple[int, int, bytes] | None:
    """Claim one pending reference: (reference id, model id, its training data)."""
    stale = now - dt.timedelta(seconds=CLAIM_SECONDS)
    found = session.execute(
        select(PerformanceReference.reference_id, PerformanceReference.claimed_at)
        .where(
            PerformanceReference.status == FITTING,
            or_(PerformanceReference.claimed_at.is_(None), PerformanceReference.claimed_at < stale),
        )
        .order_by(PerformanceReference.reference_id)
        .limit(1)
    ).first()
    if found is None:
        return None
    reference_id, claimed_at = found
    same_claim = (
        PerformanceReference.claimed_at.is_(None)
        if claimed_at is None
        else PerformanceReference.claimed_at == claimed_at
    )
    taken = session.execute(
        update(PerformanceReference)
        .where(
            PerformanceReference.reference_id == reference_id,
            PerformanceReference.status == FITTING,
            same_claim,
        )
        .values(claimed_at=now)
    )
    if getattr(taken, "rowcount", 0) != 1:  # another process claimed it first
        return None
    row = session.execute(
        select(PerformanceReference.model_id, PerformanceReference.fit_data).where(
            PerformanceReference.reference_id == reference_id
        )
    ).one()
    return int(reference_id), int(row.model_id), bytes(row.fit_data or b"")


def fit_pending(db: Database, settings: Settings) -> int:
    """Fit one pending reference's loss models; returns 1 when it did work, else 0."""
    now = utcnow()
    with db.session() as session:
        claimed = _claim(session, now)
    if claimed is None:
        return 0
    reference_id, model_id, data = claimed
    loss_model, note = fit_loss_model(data, seed=model_id)
    with db.session() as session:
        perf = session.get(PerformanceReference, reference_id)
        if perf is None or perf.status != FITTING or perf.claimed_at != now:
            return 1  # deleted meanwhile, or taken over by another process
        perf.loss_model = loss_model
        perf.note = note
        perf.status = READY
        perf.fit_data = None
        perf.claimed_at = None
        model = session.get(MonitoredModel, model_id)
        if loss_model is not None and model is not None and model.reference_id == reference_id:
            backfill(session, model, reference_id, LossModel.from_bytes(loss_model))
    return 1


def backfill(session: Session, model: MonitoredModel, reference_id: int, loss: LossModel) -> int:
    """The label-free sums of the live window's predictions under this reference's loss
    models (replacing any it had); returns the predictions read."""
    window = WindowSpec.parse(model.window)
    session.execute(
        delete(PerformancePart).where(
            PerformancePart.model_id == model.id,
            PerformancePart.kind == ESTIMATED,
            PerformancePart.reference_id == reference_id,
        )
    )
    now = utcnow()
    total = 0
    parts: list[dict[str, Any]] = []
    for rows in iter_prediction_chunks(session, live_window_query(model, window, now)):
        total += len(rows)
        columns = prediction_columns(model, rows)
        blocks = blocks_of(
            window, np.array([p.seq for p in rows], dtype=np.int64), [p.ts for p in rows]
        )
        for key, at in group_by_block(blocks, [p.model_version for p in rows]).items():
            features = {f["name"]: columns.values[f["name"]][at] for f in model.features}
            sums = dle_sums(loss, features, columns.values[PREDICTION][at])
            parts.append(part_row(model.id, key, ESTIMATED, sums, now, reference_id))
    insert_parts(session, parts)
    return total
