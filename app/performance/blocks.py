"""What ingest adds to the performance blocks, in the same transaction as the rows.

Per block and model version: how many records fell in each sampling stratum
(``N_h``, which the audited estimator weights by) and, once the model's reference
is calibrated, the label-free estimate's sums (CBPE for classifiers, DLE for
regressors). Each is one ``performance_parts`` row per batch, block and version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.ingest.columns import CONFIDENCE, PREDICTION, probability_matrix
from app.performance.fitting import Fitted, fitted
from app.performance.tables import PerformancePart
from exceptions_queue.sampling import FLAGGED, UNFLAGGED
from monitors.performance import audit_population, cbpe_sums, dle_sums
from monitors.window import WindowSpec
from storage.tables import MonitoredModel

if TYPE_CHECKING:
    from app.ingest.store import StoredBatch

# the kinds of parts: stratum populations, label-free sums, and what labels add
POPULATION = "population"
ESTIMATED = "estimated"
REALIZED = "realized"
AUDITED = "audited"
DRIFT_SAMPLE = "drift_sample"  # labels on drift tickets' samples: counted, never estimated from

Key = tuple[int, str]  # (block, model version)


def blocks_of(
    window: WindowSpec, seqs: npt.NDArray[np.int64], stamps: Sequence[dt.datetime]
) -> npt.NDArray[np.int64]:
    """The block of each record: by sequence number for count windows, by time for time windows."""
    if window.kind == "count":
        return window.blocks_of_sequence(np.asarray(seqs, dtype=np.int64))
    return window.blocks_of_times(np.array([t.timestamp() for t in stamps], dtype=np.float64))


def version_key(version: str | None) -> str:
    return version or ""


def group(keys: Iterable[Key]) -> dict[Key, npt.NDArray[np.intp]]:
    """Positions of each distinct key, in first-seen order."""
    out: dict[Key, list[int]] = {}
    for i, key in enumerate(keys):
        out.setdefault(key, []).append(i)
    return {k: np.array(v, dtype=np.intp) for k, v in out.items()}


def part_row(
    model_id: int,
    key: Key,
    kind: str,
    sums: Any,
    now: dt.datetime,
    reference_id: int | None = None,
    span: tuple[dt.datetime, dt.datetime] | None = None,
) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "block": key[0],
        "model_version": key[1],
        "kind": kind,
        "reference_id": reference_id,
        "sums": sums.to_json(),
        "first_ts": span[0] if span else None,
        "last_ts": span[1] if span else None,
        "created_at": now,
    }


def insert_parts(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(insert(PerformancePart), list(rows))


def reference_fit(session: Session, model: MonitoredModel) -> Fitted | None:
    """The model's current reference fit, if it can estimate without labels."""
    if model.reference_id is None:
        return None
    found = fitted(session, model.reference_id)
    return found if found is not None and found.can_estimate else None


def on_batch_stored(
    session: Session,
    model: MonitoredModel,
    stored: StoredBatch,
    *,
    flagged: npt.NDArray[np.intp],
    now: dt.datetime,
) -> None:
    """Add a stored batch's stratum populations and label-free sums to its blocks.

    ``flagged`` are the batch positions some confidence rule flagged (the
    ``flagged`` stratum; the rest are ``unflagged``, the audit's population).
    """
    positions = stored.new_positions
    if not len(positions):
        return
    batch = stored.batch
    window = WindowSpec.parse(model.window)
    stamps = [batch.timestamps[i] for i in positions.tolist()]
    blocks = blocks_of(window, stored.seqs, stamps)
    versions = [version_key(batch.model_versions[i]) for i in positions.tolist()]
    strata = np.where(np.isin(positions, flagged), FLAGGED, UNFLAGGED)
    fit = reference_fit(session, model)
    probabilities = (
        probability_matrix(model.labels or [], [batch.probabilities_of(i) for i in positions])
        if model.task == "classification"
        else None
    )
    rows = []
    for key, at in group(zip(blocks.tolist(), versions, strict=True)).items():
        times = [stamps[i] for i in at.tolist()]
        rows.append(
            part_row(
                model.id,
                key,
                POPULATION,
                audit_population(strata[at]),
                now,
                span=(min(times), max(times)),
            )
        )
        if fit is None:
            continue
        records = positions[at]
        predicted = batch.columns.values[PREDICTION][records]
        if fit.spec is not None:
            sums: Any = cbpe_sums(
                fit.spec,
                predicted,
                probabilities=None if probabilities is None else probabilities[at],
                confidence=batch.columns.values[CONFIDENCE][records],
            )
        else:
            assert fit.loss_model is not None
            features = {f["name"]: batch.columns.values[f["name"]][records] for f in model.features}
            sums = dle_sums(fit.loss_model, features, predicted)
        rows.append(part_row(model.id, key, ESTIMATED, sums, now, fit.reference_id))
    insert_parts(session, rows)
