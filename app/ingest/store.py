"""Ingestion: validate a batch, store its rows, and add its counts to the window blocks.

Everything a batch changes is written in the caller's one transaction: the rows,
the sequence counter, the block counts and the tickets. So counts and rows can
never disagree, and a 202 (sent only after commit) means all of it is durable.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from app.errors import ValidationFailed
from app.ingest.columns import CONFIDENCE, Columns, add_outputs, feature_columns
from app.ingest.sketches import get_spec
from app.schemas import PredictionIn
from exceptions_queue.labels import LabelRefused, valid_label
from monitors.sketch import SketchSpec
from monitors.window import WindowSpec, split_by_block
from storage.sql import SQLITE, dialect
from storage.tables import BlockCounts, MonitoredModel

PROBABILITY_TOLERANCE = 0.01


@dataclass
class ValidatedBatch:
    """A batch that passed every check, as rows and as columns."""

    records: Sequence[PredictionIn]
    client_ids: list[str]
    timestamps: list[dt.datetime]
    outputs: list[Any]
    confidence: npt.NDArray[np.float64]
    columns: Columns  # features plus __prediction__ and __confidence__


@dataclass
class StoredBatch:
    """What a batch added: positions (into the validated batch) of new rows, and their ids."""

    batch: ValidatedBatch
    new_positions: npt.NDArray[np.intp]
    prediction_ids: list[int]
    duplicates: int
    # the sequence numbers of the new rows (they place records in count blocks)
    seqs: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def _loc(prefix: Sequence[str | int], i: int, *rest: str | int) -> list[str | int]:
    return [*prefix, i, *rest] if prefix else [*rest]


def validate_batch(
    model: MonitoredModel,
    records: Sequence[PredictionIn],
    *,
    now: dt.datetime,
    prefix: Sequence[str | int] = ("predictions",),
) -> ValidatedBatch:
    """Check a batch against the model's schema; raise a 422 naming the first bad field.

    ``prefix`` is the path of the record list in the request (empty for a single record).
    """
    columns = feature_columns(
        model.features,
        [r.features for r in records],
        strict=model.strict,
        loc=lambda i, name: _loc(prefix, i, "features", name),
    )
    labels = set(model.labels or ())
    outputs: list[Any] = []
    confidence = np.full(len(records), np.nan)
    for i, r in enumerate(records):
        out = r.prediction
        try:
            checked = valid_label(model, out, what="prediction")
        except LabelRefused as refused:
            raise ValidationFailed.at(_loc(prefix, i, "prediction"), str(refused)) from None
        if model.task == "classification":  # a regression output is stored as it was sent
            out = checked
        outputs.append(out)
        if r.probabilities is not None:
            if model.task != "classification":
                raise ValidationFailed.at(
                    _loc(prefix, i, "probabilities"), "probabilities are for classification models"
                )
            extra = set(r.probabilities) - labels
            if extra:
                raise ValidationFailed.at(
                    _loc(prefix, i, "probabilities", sorted(extra)[0]),
                    "not one of the model's labels",
                )
            total = sum(r.probabilities.values())
            if abs(total - 1.0) > PROBABILITY_TOLERANCE:
                raise ValidationFailed.at(
                    _loc(prefix, i, "probabilities"),
                    f"probabilities must sum to 1 (they sum to {total:.4f})",
                )
        if r.confidence is not None:
            confidence[i] = r.confidence
        elif r.probabilities:
            confidence[i] = max(r.probabilities.values())
    add_outputs(columns, task=model.task, outputs=outputs, confidence=confidence)
    client_ids = [r.id or f"dd-{uuid.uuid4().hex}" for r in records]
    timestamps = [r.timestamp or now for r in records]
    return ValidatedBatch(records, client_ids, timestamps, outputs, confidence, columns)


_ROW_COLUMNS = (
    "model_id",
    "client_id",
    "seq",
    "ts",
    "received_at",
    "features",
    "prediction",
    "confidence",
    "probabilities",
    "model_version",
)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_time(value: dt.datetime) -> str:
    """What SQLAlchemy stores for a UTCDateTime on SQLite (naive UTC, microseconds always)."""
    t = value.astimezone(dt.UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031  (fast, fixed widths)
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.microsecond,
    )


_INSERT_HEAD = f"INSERT INTO predictions ({', '.join(_ROW_COLUMNS)}) "
_ON_CONFLICT = " ON CONFLICT (model_id, client_id) DO NOTHING"
# The rows carry their position among the batch's new rows; the statement adds the
# first sequence number reserved (known only inside the transaction), so the rows
# themselves can be built before it.
_SQLITE_INSERT = (
    _INSERT_HEAD
    + "VALUES (?, ?, ? + {first_seq:d}, "
    + ", ".join("?" * (len(_ROW_COLUMNS) - 3))
    + ")"
    + _ON_CONFLICT
)
# PostgreSQL reads the whole batch from one JSON document (rows as objects)
_PG_ROW_TYPES = (
    "bigint",
    "varchar",
    "bigint",
    "timestamptz",
    "timestamptz",
    "json",
    "json",
    "float8",
    "json",
    "varchar",
)
_PG_INSERT = (
    _INSERT_HEAD
    + "SELECT "
    + ", ".join("seq + %s" if c == "seq" else c for c in _ROW_COLUMNS)
    + " FROM json_to_recordset(%s::json) AS r("
    + ", ".join(f"{c} {t}" for c, t in zip(_ROW_COLUMNS, _PG_ROW_TYPES, strict=True))
    + ")"
    + _ON_CONFLICT
    + " RETURNING seq, id"
)


def _insert_params(
    on_sqlite: bool,
    model_id: int,
    client_ids: Sequence[str],
    values: Sequence[tuple[Any, ...]],
    positions: Iterable[int],
) -> Any:
    """The parameters of :func:`_insert_rows` for the records at ``positions``, in order.

    SQLite takes one executemany of text values. PostgreSQL takes one statement
    whose parameter is the rows as one JSON document, serialised in one call and
    unpacked by ``json_to_recordset``: a pipelined executemany cost ~25 ms of CPU
    per 1,000 rows in psycopg, arrays (``unnest``) as much.
    """
    rows = [(model_id, client_ids[i], k, *values[i]) for k, i in enumerate(positions)]
    if on_sqlite:
        return rows
    return orjson.dumps([dict(zip(_ROW_COLUMNS, row, strict=True)) for row in rows]).decode()


def _insert_rows(
    session: Session, params: Any, *, model_id: int, seqs: tuple[int, int]
) -> dict[int, int]:
    """Insert the rows of ``params`` (:func:`_insert_params`) numbered from ``seqs[0]``.

    Returns the sequence number and id of each row written; rows skipped by ON
    CONFLICT are not among them. Values arrive already in the driver's types: the
    ORM/Core path would process every value of every row through the column types
    (two datetimes and three JSON columns per record): most of the cost of a batch.
    """
    connection = session.connection()
    first, end = seqs
    if dialect(session) == SQLITE:
        connection.exec_driver_sql(_SQLITE_INSERT.format(first_seq=first), params)
        written = connection.exec_driver_sql(
            "SELECT seq, id FROM predictions WHERE model_id = ? AND seq >= ? AND seq < ?",
            (model_id, first, end),
        )
    else:
        written = connection.exec_driver_sql(_PG_INSERT, (first, params))
    return {int(seq): int(pk) for seq, pk in written}


def _existing_ids(
    session: Session, model_id: int, client_ids: list[str], *, on_sqlite: bool
) -> set[str]:
    """Which of ``client_ids`` the model already has: one statement with one parameter.

    ``IN (:id_1, ..., :id_1000)`` costs a statement compiled with a thousand bound
    parameters on every batch; an array (PostgreSQL) or a JSON list (SQLite) does not.
    """
    if not client_ids:
        return set()
    if on_sqlite:
        sql = (
            "SELECT client_id FROM predictions WHERE model_id = ? "
            "AND client_id IN (SELECT value FROM json_each(?))"
        )
        ids: Any = _json(client_ids)
    else:
        sql = "SELECT client_id FROM predictions WHERE model_id = %s AND client_id = ANY(%s)"
        ids = client_ids
    return set(session.connection().exec_driver_sql(sql, (model_id, ids)).scalars())


@dataclass
class RowValues:
    """Each record's stored values in the driver's types, minus its id and sequence number.

    Computed before the write transaction (on SQLite, JSON and timestamps as
    text), so the write lock (SQLite's one writer; the model row on PostgreSQL)
    is held for less.
    """

    on_sqlite: bool
    values: list[tuple[Any, ...]]  # ts, received_at, features, prediction, confidence, ...
    # the insert's parameters when every record of the batch is new (the usual case)
    all_new: Any
    # sketch counts of the whole batch against this reference, used when the batch
    # is stored whole into one block (the usual case)
    reference_id: int | None = None
    counts: npt.NDArray[np.int64] | None = None


def row_values(
    model: MonitoredModel,
    batch: ValidatedBatch,
    *,
    on_sqlite: bool,
    now: dt.datetime,
    spec: SketchSpec | None = None,
) -> RowValues:
    """The values ``store_batch`` inserts for each record of ``batch``.

    With ``spec`` (the sketch of the model's reference), the batch's counts too.
    """
    confidence = [None if math.isnan(c) else c for c in batch.confidence.tolist()]
    rows = zip(batch.records, batch.timestamps, batch.outputs, confidence, strict=True)
    values: list[tuple[Any, ...]]
    if on_sqlite:  # text for SQLite's driver: JSON and timestamps as SQLAlchemy writes them
        received = _sqlite_time(now)
        output_json = {label: _json(label) for label in model.labels or ()}
        values = [
            (
                _sqlite_time(ts),
                received,
                _json(r.features),
                output_json[out] if out in output_json else _json(out),
                conf,
                None if r.probabilities is None else _json(r.probabilities),
                r.model_version,
            )
            for r, ts, out, conf in rows
        ]
    else:  # Python values: _insert_rows serialises the batch as one JSON document
        values = [
            (ts, now, r.features, out, conf, r.probabilities, r.model_version)
            for r, ts, out, conf in rows
        ]
    return RowValues(
        on_sqlite,
        values,
        all_new=_insert_params(on_sqlite, model.id, batch.client_ids, values, range(len(values))),
        reference_id=model.reference_id if spec is not None else None,
        counts=spec.count(batch.columns.values) if spec is not None else None,
    )


def store_batch(
    session: Session,
    model: MonitoredModel,
    batch: ValidatedBatch,
    *,
    now: dt.datetime,
    values: RowValues | None = None,
) -> StoredBatch:
    """Insert the batch's new rows and add them to the model's window blocks.

    ``values`` (from :func:`row_values`, computed before the transaction) saves
    that work inside it.
    """
    n = len(batch.client_ids)
    # A record whose id was already accepted (before, or earlier in this batch) is a
    # duplicate and changes nothing.
    first_of: dict[str, int] = {}
    for i, cid in enumerate(batch.client_ids):
        first_of.setdefault(cid, i)
    on_sqlite = dialect(session) == SQLITE
    existing = _existing_ids(session, model.id, list(first_of), on_sqlite=on_sqlite)
    candidates = [i for cid, i in first_of.items() if cid not in existing]
    if not candidates:
        return StoredBatch(batch, np.empty(0, dtype=np.intp), [], n)

    # Reserve sequence numbers (they place records in count-window blocks). On
    # PostgreSQL this row lock serialises concurrent writers of one model, briefly.
    end = session.execute(
        update(MonitoredModel)
        .where(MonitoredModel.id == model.id)
        .values(record_count=MonitoredModel.record_count + len(candidates))
        .returning(MonitoredModel.record_count)
    ).scalar_one()
    first_seq = end - len(candidates)

    if values is None or values.on_sqlite != on_sqlite:
        values = row_values(model, batch, on_sqlite=on_sqlite, now=now)
    params = (
        values.all_new
        if len(candidates) == n
        else _insert_params(on_sqlite, model.id, batch.client_ids, values.values, candidates)
    )
    # A concurrent writer (another replica) may have taken an id between the check
    # and the insert: ON CONFLICT DO NOTHING skipped it, so it is a duplicate too.
    inserted = _insert_rows(session, params, model_id=model.id, seqs=(first_seq, end))
    kept = [(k, i) for k, i in enumerate(candidates) if first_seq + k in inserted]
    positions = np.array([i for _, i in kept], dtype=np.intp)
    seqs = np.array([first_seq + k for k, _ in kept], dtype=np.int64)
    if model.reference_id is not None and len(positions):
        whole = len(positions) == batch.columns.rows and values.reference_id == model.reference_id
        _add_block_counts(
            session, model, batch, positions, seqs, now=now, counts=values.counts if whole else None
        )
    return StoredBatch(
        batch,
        positions,
        [inserted[int(q)] for q in seqs],
        n - len(positions),
        seqs,
    )


def encode_counts(counts: npt.NDArray[np.int64]) -> bytes:
    return zlib.compress(counts.astype("<i8").tobytes(), 1)


def decode_counts(blob: bytes) -> npt.NDArray[np.int64]:
    return np.frombuffer(zlib.decompress(blob), dtype="<i8").astype(np.int64)


def block_parts(
    *,
    spec: SketchSpec,
    window: WindowSpec,
    columns: Columns,
    seqs: npt.NDArray[np.int64],
    stamps: Sequence[dt.datetime],
    model_id: int,
    reference_id: int,
    now: dt.datetime,
    counts_of_all: npt.NDArray[np.int64] | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``block_counts`` for a set of records: one per block they fall in.

    ``counts_of_all`` (the counts of all the records, computed beforehand) is used
    when they all fall in one block.
    """
    if window.kind == "count":
        blocks = window.blocks_of_sequence(seqs)
    else:
        blocks = window.blocks_of_times(np.array([t.timestamp() for t in stamps]))
    parts = []
    for block, group in split_by_block(blocks):
        if counts_of_all is not None and len(group) == columns.rows:
            counts = counts_of_all
        else:
            counts = spec.count({k: v[group] for k, v in columns.values.items()})
        times = stamps if len(group) == len(stamps) else [stamps[j] for j in group.tolist()]
        confidence = columns.values.get(CONFIDENCE)
        present = (
            np.empty(0) if confidence is None else confidence[group][~np.isnan(confidence[group])]
        )
        parts.append(
            {
                "model_id": model_id,
                "reference_id": reference_id,
                "block": block,
                "rows": len(group),
                "counts": encode_counts(counts),
                "first_ts": min(times),
                "last_ts": max(times),
                "confidence_sum": float(present.sum()),
                "confidence_rows": len(present),
                "created_at": now,
            }
        )
    return parts


def _add_block_counts(
    session: Session,
    model: MonitoredModel,
    batch: ValidatedBatch,
    positions: npt.NDArray[np.intp],
    seqs: npt.NDArray[np.int64],
    *,
    now: dt.datetime,
    counts: npt.NDArray[np.int64] | None = None,
) -> None:
    assert model.reference_id is not None
    whole = len(positions) == batch.columns.rows  # the usual batch: nothing was a duplicate
    parts = block_parts(
        spec=get_spec(session, model.reference_id),
        window=WindowSpec.parse(model.window),
        columns=batch.columns if whole else batch.columns.take(positions),
        seqs=seqs,
        stamps=batch.timestamps if whole else [batch.timestamps[i] for i in positions.tolist()],
        model_id=model.id,
        reference_id=model.reference_id,
        now=now,
        counts_of_all=counts,
    )
    session.execute(insert(BlockCounts), parts)
