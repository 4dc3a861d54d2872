"""What ingest adds to the performance blocks, in the same transaction as the rows.

Per block and model version: how many records fell in each sampling stratum
(``N_h``, which the audited estimator weights by) and, once the model's reference
is calibrated, the label-free estimate's sums (CBPE for classifiers, DLE for
regressors). Each is one ``performance_parts`` row per batch, block and version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Table
from sqlalchemy.orm import Session

from app.ingest.columns import CONFIDENCE, PREDICTION, probability_matrix
from app.performance.fitting import Fitted, fitted
from app.performance.tables import PerformancePart
from exceptions_queue.sampling import FLAGGED, UNFLAGGED
from monitors.performance import AuditSums, cbpe_sums, dle_sums, population_of
from monitors.window import WindowSpec
from storage.tables import MonitoredModel

if TYPE_CHECKING:
    from app.ingest.parse import ValidatedBatch
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


def group_by_block(
    blocks: npt.NDArray[np.int64], versions: Sequence[str | None]
) -> dict[Key, npt.NDArray[np.intp]]:
    """:func:`group` of each record's (block, model version), without a Python step per
    record when the records share one version (a batch usually does)."""
    distinct = set(versions)
    if len(distinct) != 1:
        return group(zip(blocks.tolist(), map(version_key, versions), strict=True))
    version = version_key(distinct.pop())
    if len(blocks) and blocks[0] == blocks[-1] and (blocks == blocks[0]).all():
        return {(int(blocks[0]), version): np.arange(len(blocks), dtype=np.intp)}
    order = np.argsort(blocks, kind="stable")
    firsts = np.flatnonzero(np.diff(blocks[order], prepend=blocks[order][0] - 1))
    return {
        (int(blocks[order[start]]), version): at  # (a stable sort: positions stay in order)
        for start, at in zip(firsts.tolist(), np.split(order, firsts[1:]), strict=True)
    }


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


def _population(is_flagged: npt.NDArray[np.bool_], at: npt.NDArray[np.intp]) -> AuditSums:
    flagged = int(np.count_nonzero(is_flagged[at]))
    return population_of({FLAGGED: flagged, UNFLAGGED: len(at) - flagged})


def _estimated_part(
    model: MonitoredModel,
    batch: ValidatedBatch,
    fit: Fitted,
    records: npt.NDArray[np.intp],
    key: Key,
    now: dt.datetime,
) -> dict[str, Any]:
    """The label-free sums (CBPE or DLE) of a block's ``records`` of ``batch``."""
    predicted = batch.columns.values[PREDICTION][records]
    sums: Any
    if fit.spec is not None:
        probabilities = (
            probability_matrix(
                model.labels or [], [batch.probabilities_of(i) for i in records.tolist()]
            )
            if model.task == "classification"
            else None
        )
        sums = cbpe_sums(
            fit.spec,
            predicted,
            probabilities=probabilities,
            confidence=batch.columns.values[CONFIDENCE][records],
        )
    else:
        assert fit.loss_model is not None
        features = {f["name"]: batch.columns.values[f["name"]][records] for f in model.features}
        sums = dle_sums(fit.loss_model, features, predicted)
    return part_row(model.id, key, ESTIMATED, sums, now, fit.reference_id)


_INSERT_PARTS = cast(Table, PerformancePart.__table__).insert()  # Core: no ORM bulk path


def insert_parts(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(_INSERT_PARTS, list(rows))


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
    whole = len(positions) == batch.rows  # the usual batch: nothing was a duplicate
    stamps = batch.timestamps if whole else [batch.timestamps[i] for i in positions.tolist()]
    blocks = blocks_of(window, stored.seqs, stamps)
    versions = (
        batch.model_versions if whole else [batch.model_versions[i] for i in positions.tolist()]
    )
    is_flagged = np.isin(positions, flagged)
    fit = reference_fit(session, model)
    rows = []
    for key, at in group_by_block(blocks, versions).items():
        times = stamps if len(at) == len(stamps) else [stamps[i] for i in at.tolist()]
        rows.append(
            part_row(
                model.id,
                key,
                POPULATION,
                _population(is_flagged, at),
                now,
                span=(min(times), max(times)),
            )
        )
        if fit is not None:
            rows.append(_estimated_part(model, batch, fit, positions[at], key, now))
    insert_parts(session, rows)
