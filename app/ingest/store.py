"""Storing a validated batch: its rows, their sequence numbers, and the window block counts.

The rows, the block counts and the tickets of a batch are written in one
transaction, and the 202 is sent only after it commits, so counts and rows never
disagree and an acknowledged batch is durable. Everything that can be computed
before that transaction is: the rows' values in the driver's format, the sketch
counts, and on PostgreSQL the sequence numbers and row ids too.

Sequence numbers place records in count-window blocks.

* SQLite has one writer at a time: inside its write transaction the batch reads
  the counter and the highest row id, then inserts (a batch holding an id stored
  before is rolled back and written again, its ids checked under the lock).
  Numbers are dense and exact.
* PostgreSQL reserves a batch's numbers and row ids *before* its transaction, in a
  transaction of its own that holds the model's row lock for one statement and
  commits without waiting for the disk (``synchronous_commit = off``: the batch's
  own commit later flushes the WAL up to and past it, so a durable batch always
  has a durable reservation). Writers of one model then never wait on each other
  for their rows. The price: numbers reserved by a batch that then fails (a
  lost connection, a concurrent replica storing one of its ids first) are never
  used, so a count-window block may hold fewer than ``step`` records, and the
  model's ``record_count`` counts numbers reserved rather than rows. A block is
  judged once its numbers are all reserved; a batch that reserved some of them
  and commits after the judgement (within one request's time) is counted in the
  block, and so in every later window that covers it, but not in that judgement.

Rows go in with ``COPY`` on PostgreSQL (text format, built in one pass; the
features as the JSON text the client sent) and one ``executemany`` on SQLite.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import orjson
import psycopg
from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from app.db import Database
from app.ingest.columns import CONFIDENCE, Columns
from app.ingest.parse import ValidatedBatch
from app.ingest.sketches import get_spec
from monitors.sketch import SketchSpec
from monitors.window import WindowSpec, split_by_block
from storage.tables import BlockCounts, MonitoredModel


class ModelChanged(Exception):
    """The model was changed (or archived) after the batch was validated: start again."""


@dataclass
class StoredBatch:
    """What a batch added: positions (into the validated batch) of new rows, and their ids."""

    batch: ValidatedBatch
    new_positions: npt.NDArray[np.intp]
    prediction_ids: list[int]
    duplicates: int
    # the sequence numbers of the new rows (they place records in count blocks)
    seqs: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))


# --------------------------------------------------------------------------- values
_COLUMNS = (
    "id",
    "seq",
    "model_id",
    "client_id",
    "ts",
    "received_at",
    "features",
    "prediction",
    "confidence",
    "probabilities",
    "model_version",
)


def _sqlite_time(value: dt.datetime) -> str:
    """What SQLAlchemy stores for a UTCDateTime on SQLite (naive UTC, microseconds always)."""
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _utc_texts(stamps: Sequence[dt.datetime]) -> npt.NDArray[np.bytes_]:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC for each of ``stamps`` (aware), as one array.

    What :func:`_sqlite_time` gives for each, without its Python calls per record
    (a tenth of the cost): epoch microseconds, formatted by numpy.
    """
    micros = np.rint(np.array([t.timestamp() for t in stamps]) * 1e6).astype(np.int64)
    texts = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us").astype("S26")
    texts.view("S1").reshape(-1, 26)[:, 10] = b" "
    return texts


_COPY_ESCAPES = (b"\\", b"\t", b"\n", b"\r")


def _copy_escape(value: bytes) -> bytes:
    """A value for COPY's text format (backslash, tab, newline and CR escaped)."""
    return (
        value.replace(b"\\", b"\\\\")
        .replace(b"\t", b"\\t")
        .replace(b"\n", b"\\n")
        .replace(b"\r", b"\\r")
    )


_NULL = b"\\N"


def _copy_text(values: Sequence[bytes | None]) -> list[bytes]:
    """A column for COPY's text format: NULL as ``\\N``, the rest escaped where needed."""
    present = [v for v in values if v is not None]
    blob = b"\x00".join(present)  # one scan per character for the whole column
    escape = any(c in blob for c in _COPY_ESCAPES)
    if len(present) == len(values) and not escape:
        return present
    return [_NULL if v is None else _copy_escape(v) if escape else v for v in values]


@dataclass
class RowValues:
    """Each record's stored values in the driver's format, minus its row id and sequence number.

    Computed before the write transaction. On SQLite, the insert's parameters:
    a tuple per record to insert, whose first item is its place among them (the
    statement adds the first row id and sequence number); on PostgreSQL, each
    record's COPY line after its id and sequence number.
    """

    on_sqlite: bool
    positions: list[int]  # the records to insert (positions in the batch)
    values: list[Any]  # SQLite: per record of ``positions``; PostgreSQL: of the batch
    # sketch counts of the records at ``positions`` against this reference
    reference_id: int | None = None
    counts: npt.NDArray[np.int64] | None = None


def _output_json(model: MonitoredModel, outputs: Sequence[Any]) -> list[bytes]:
    if model.task == "classification":
        by_label = {label: orjson.dumps(label) for label in model.labels or ()}
        try:
            return [by_label[o] for o in outputs]
        except KeyError:
            pass
    return [orjson.dumps(o) for o in outputs]


@dataclass(frozen=True)
class _Encoded:
    """A batch's columns that both drivers take encoded: outputs as JSON, confidences with
    NaN as NULL, probabilities as JSON."""

    outputs: Sequence[bytes]
    conf: Sequence[float | None]
    probs: Sequence[bytes | None]


def _sqlite_values(
    model: MonitoredModel, batch: ValidatedBatch, now: dt.datetime, e: _Encoded
) -> list[Any]:
    """Each record's row for SQLite's driver (after a placeholder position): JSON and
    timestamps as text, as SQLAlchemy writes them."""
    n = batch.rows
    received = _sqlite_time(now)
    return list(
        zip(
            range(n),
            [model.id] * n,
            batch.client_ids,
            _utc_texts(batch.timestamps).astype("U26").tolist(),
            [received] * n,
            map(bytes.decode, batch.features_json),
            map(bytes.decode, e.outputs),
            e.conf,
            [None if p is None else p.decode() for p in e.probs],
            batch.model_versions,
            strict=True,
        )
    )


def _copy_lines(
    model: MonitoredModel, batch: ValidatedBatch, now: dt.datetime, e: _Encoded
) -> list[bytes]:
    """Each record's COPY line (text format) after its id and sequence number."""
    n = batch.rows
    return list(
        map(
            b"\t".join,
            zip(
                [b"%d" % model.id] * n,
                _copy_text([c.encode() for c in batch.client_ids]),
                np.char.add(_utc_texts(batch.timestamps), b"+00").tolist(),
                [_sqlite_time(now).encode() + b"+00"] * n,
                _copy_text(batch.features_json),
                _copy_text(e.outputs),
                [_NULL if c is None else repr(c).encode() for c in e.conf],
                _copy_text(e.probs),
                _copy_text([None if v is None else v.encode() for v in batch.model_versions]),
                strict=True,
            ),
        )
    )


def row_values(
    model: MonitoredModel,
    batch: ValidatedBatch,
    *,
    on_sqlite: bool,
    now: dt.datetime,
    positions: Sequence[int] | None = None,
    spec: SketchSpec | None = None,
) -> RowValues:
    """The values :func:`store_batch` inserts for the records at ``positions`` (default all).

    With ``spec`` (the sketch of the model's reference), their counts too.
    """
    n = batch.rows
    chosen = list(range(n)) if positions is None else list(positions)
    conf: list[float | None] = [
        None if c != c else c  # NaN -> NULL
        for c in batch.confidence.tolist()
    ]
    probs = (
        [None] * n
        if batch.probabilities is None
        else [None if p is None else orjson.dumps(p) for p in batch.probabilities]
    )
    encoded = _Encoded(_output_json(model, batch.outputs), conf, probs)
    values: list[Any]
    if on_sqlite:
        values = _sqlite_values(model, batch, now, encoded)
        if len(chosen) != n:  # only the records to insert, numbered among themselves
            values = [(k, *values[i][1:]) for k, i in enumerate(chosen)]
    else:
        values = _copy_lines(model, batch, now, encoded)
    counts = None
    if spec is not None:
        columns = (
            batch.columns
            if len(chosen) == n
            else batch.columns.take(np.array(chosen, dtype=np.intp))
        )
        counts = spec.count(columns.values)
    return RowValues(
        on_sqlite,
        chosen,
        values,
        reference_id=model.reference_id if spec is not None else None,
        counts=counts,
    )


def first_of_each_id(client_ids: Sequence[str]) -> list[int]:
    """Positions of the first record of each id (a later record with the same id is a duplicate)."""
    if len(set(client_ids)) == len(client_ids):
        return list(range(len(client_ids)))
    first: dict[str, int] = {}
    for i, cid in enumerate(client_ids):
        first.setdefault(cid, i)
    return sorted(first.values())


def existing_ids(
    session: Session, model_id: int, client_ids: list[str], *, on_sqlite: bool
) -> set[str]:
    """Which of ``client_ids`` the model already has: one statement with one parameter."""
    if not client_ids:
        return set()
    if on_sqlite:
        sql = (
            "SELECT client_id FROM predictions WHERE model_id = ? "
            "AND client_id IN (SELECT value FROM json_each(?))"
        )
        ids: Any = orjson.dumps(client_ids).decode()
    else:
        sql = "SELECT client_id FROM predictions WHERE model_id = %s AND client_id = ANY(%s)"
        ids = client_ids
    return set(session.connection().exec_driver_sql(sql, (model_id, ids)).scalars())


def check_model_unchanged(session: Session, model: MonitoredModel) -> None:
    """Raise :class:`ModelChanged` if ``model`` (as validated against) changed or was archived."""
    row = session.execute(_MODEL_STATE, {"id": model.id}).first()
    if row is None or row.status != "active" or row.updated_at != model.updated_at:
        raise ModelChanged


_MODEL_STATE = select(MonitoredModel.updated_at, MonitoredModel.status).where(
    MonitoredModel.id == bindparam("id")
)


# --------------------------------------------------------------------------- SQLite
_SQLITE_INSERT = (
    "INSERT INTO predictions ("
    + ", ".join(_COLUMNS)
    + ") VALUES (?1 + {first_id:d}, ?1 + {first_seq:d}, "
    + ", ".join(f"?{k}" for k in range(2, len(_COLUMNS)))
    + ") ON CONFLICT (model_id, client_id) DO NOTHING"
)


class Raced(Exception):
    """Another writer stored one of the batch's ids since they were checked: check again."""


def store_sqlite(
    session: Session,
    model: MonitoredModel,
    batch: ValidatedBatch,
    values: RowValues,
    *,
    now: dt.datetime,
    recheck: bool = False,
) -> StoredBatch:
    """Insert the rows of ``values`` and their block counts, inside SQLite's write lock.

    The rows' values were built before the lock, for every record (the first of
    each id). Under the lock: the counter, the highest row id, the insert (the
    statement adds the first id and number to each row's place; a stored id is
    skipped), the block counts. If any id was stored already (a client's retry,
    or another writer meanwhile), :class:`Raced` is raised (the caller rolls
    back and calls again with ``recheck``, which checks the ids under the lock):
    numbers and ids stay dense and exact.
    """
    n = batch.rows
    candidates = values.positions
    rows = values.values
    if recheck:
        existing = existing_ids(
            session, model.id, [batch.client_ids[i] for i in candidates], on_sqlite=True
        )
        if existing:
            keep = [k for k, i in enumerate(candidates) if batch.client_ids[i] not in existing]
            candidates = [candidates[k] for k in keep]
            rows = [(j, *rows[k][1:]) for j, k in enumerate(keep)]
    if not candidates:
        return StoredBatch(batch, np.empty(0, dtype=np.intp), [], n)
    connection = session.connection()
    end = connection.exec_driver_sql(
        "UPDATE models SET record_count = record_count + ? WHERE id = ? RETURNING record_count",
        (len(candidates), model.id),
    ).scalar_one()
    first_seq = int(end) - len(candidates)
    first_id = int(
        connection.exec_driver_sql("SELECT coalesce(max(id), 0) + 1 FROM predictions").scalar_one()
    )
    inserted = connection.exec_driver_sql(
        _SQLITE_INSERT.format(first_id=first_id, first_seq=first_seq), rows
    ).rowcount
    if inserted != len(candidates):
        raise Raced
    positions = np.array(candidates, dtype=np.intp)
    seqs = np.arange(first_seq, first_seq + len(candidates), dtype=np.int64)
    counts = values.counts if candidates is values.positions else None
    add_block_counts(session, model, batch, positions, seqs, now=now, counts=counts)
    ids = list(range(first_id, first_id + len(candidates)))
    return StoredBatch(batch, positions, ids, n - len(candidates), seqs)


# --------------------------------------------------------------------------- PostgreSQL
@dataclass(frozen=True)
class Reservation:
    """Sequence numbers and row ids reserved for the records at ``positions``."""

    positions: list[int]
    first_seq: int
    ids: list[int]


# the model must still be the one the batch was validated against (else no numbers)
_RESERVE = (
    "WITH r AS (UPDATE models SET record_count = record_count + %(n)s"
    " WHERE id = %(model_id)s AND updated_at = %(updated_at)s AND status = 'active'"
    " RETURNING record_count)"
    " SELECT (SELECT record_count FROM r),"
    " ARRAY(SELECT nextval('predictions_id_seq') FROM generate_series(1, %(n)s)"
    " WHERE EXISTS (SELECT FROM r))"
)


def reserve(
    db: Database,
    model: MonitoredModel,
    batch: ValidatedBatch,
    wanted: list[int],
    *,
    authorize: Callable[[Session], object] | None = None,
) -> Reservation:
    """Reserve numbers and ids for the records of ``wanted`` not stored before (PostgreSQL).

    A transaction of its own: the model's row lock is held from its one UPDATE
    to its commit, which does not wait for the disk (see the module's notes).
    Raises :class:`ModelChanged` (reserving nothing) if the model changed since
    ``model`` was read. ``authorize`` (the caller's key check) runs first.
    """
    with db.session() as session:
        if authorize is not None:
            authorize(session)
        connection = session.connection()
        existing = existing_ids(
            session, model.id, [batch.client_ids[i] for i in wanted], on_sqlite=False
        )
        candidates = [i for i in wanted if batch.client_ids[i] not in existing]
        if not candidates:
            return Reservation([], 0, [])
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
        end, ids = connection.exec_driver_sql(
            _RESERVE,
            {"n": len(candidates), "model_id": model.id, "updated_at": model.updated_at},
        ).one()
        if end is None:
            raise ModelChanged
    return Reservation(candidates, int(end) - len(candidates), list(ids))


_COPY = f"COPY predictions ({', '.join(_COLUMNS)}) FROM STDIN"
_PG_TYPES = (
    "bigint",
    "bigint",
    "bigint",
    "varchar",
    "timestamptz",
    "timestamptz",
    "json",
    "json",
    "float8",
    "json",
    "varchar",
)
# the fallback when COPY meets an id another writer stored meanwhile
_PG_INSERT = (
    f"INSERT INTO predictions ({', '.join(_COLUMNS)}) SELECT {', '.join(_COLUMNS)}"
    " FROM json_to_recordset(%s::json) AS r("
    + ", ".join(f"{c} {t}" for c, t in zip(_COLUMNS, _PG_TYPES, strict=True))
    + ") ON CONFLICT (model_id, client_id) DO NOTHING RETURNING id"
)


def copy_payload(values: RowValues, reservation: Reservation) -> bytes:
    """The rows of ``reservation`` in COPY's text format, in one buffer."""
    lines = (
        values.values
        if len(reservation.positions) == len(values.values)
        else [values.values[i] for i in reservation.positions]
    )
    return b"".join(
        map(
            b"%d\t%d\t%b\n".__mod__,
            zip(
                reservation.ids,
                range(reservation.first_seq, reservation.first_seq + len(reservation.ids)),
                lines,
                strict=True,
            ),
        )
    )


def _row_document(payload: bytes) -> bytes:
    """The COPY rows of ``payload`` as one JSON document of objects (the fallback's input)."""
    rows = []
    for line in payload.split(b"\n")[:-1]:
        fields = [_copy_unescape(f) for f in line.split(b"\t")]
        row: dict[str, Any] = {}
        for name, value in zip(_COLUMNS, fields, strict=True):
            if value is None:
                row[name] = None
            elif name in ("features", "prediction", "probabilities"):
                row[name] = orjson.Fragment(value)
            else:
                row[name] = value.decode()
        rows.append(row)
    return orjson.dumps(rows)


def _copy_unescape(value: bytes) -> bytes | None:
    if value == _NULL:
        return None
    if b"\\" not in value:
        return value
    out = bytearray()
    escapes = {ord("\\"): b"\\", ord("t"): b"\t", ord("n"): b"\n", ord("r"): b"\r"}
    it = iter(value)
    for c in it:
        out += escapes[next(it)] if c == ord("\\") else bytes((c,))
    return bytes(out)


def store_postgres(
    session: Session,
    model: MonitoredModel,
    batch: ValidatedBatch,
    reservation: Reservation,
    payload: bytes,
    *,
    now: dt.datetime,
    counts: npt.NDArray[np.int64] | None,
    duplicates: int,
) -> StoredBatch:
    """COPY the reserved rows in and add their block counts; no lock is taken.

    If another writer stored one of the ids since the reservation checked them,
    COPY fails on the unique constraint: it is rolled back to a savepoint and the
    rows go in with ``ON CONFLICT DO NOTHING`` instead (those ids are duplicates).
    """
    connection = session.connection()
    raw = connection.connection.driver_connection
    assert raw is not None
    positions = reservation.positions
    ids = reservation.ids
    savepoint = connection.begin_nested()
    try:
        with raw.cursor() as cursor, cursor.copy(_COPY) as copy:
            copy.write(payload)
        savepoint.commit()
    except psycopg.errors.UniqueViolation:  # another writer stored one of the ids meanwhile
        savepoint.rollback()
        written = set(
            connection.exec_driver_sql(_PG_INSERT, (_row_document(payload).decode(),)).scalars()
        )
        kept = [(k, i) for k, i in enumerate(positions) if ids[k] in written]
        positions = [i for _, i in kept]
        ids = [ids[k] for k, _ in kept]
        seqs = np.array([reservation.first_seq + k for k, _ in kept], dtype=np.int64)
        counts = None
    else:
        seqs = np.arange(
            reservation.first_seq, reservation.first_seq + len(positions), dtype=np.int64
        )
    where = np.array(positions, dtype=np.intp)
    add_block_counts(session, model, batch, where, seqs, now=now, counts=counts)
    return StoredBatch(batch, where, ids, duplicates + len(reservation.positions) - len(ids), seqs)


# --------------------------------------------------------------------------- block counts
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


_BLOCK_COUNTS = cast(Table, BlockCounts.__table__)  # Core: no ORM bulk path per insert


def add_block_counts(
    session: Session,
    model: MonitoredModel,
    batch: ValidatedBatch,
    positions: npt.NDArray[np.intp],
    seqs: npt.NDArray[np.int64],
    *,
    now: dt.datetime,
    counts: npt.NDArray[np.int64] | None = None,
) -> None:
    """Insert the block counts of the stored records at ``positions`` (numbered ``seqs``).

    ``counts`` are those of exactly these records against the model's reference,
    computed before the transaction (else they are counted here).
    """
    if model.reference_id is None or not len(positions):
        return
    whole = len(positions) == batch.rows  # the usual batch: nothing was a duplicate
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
    session.connection().execute(insert(_BLOCK_COUNTS), parts)
