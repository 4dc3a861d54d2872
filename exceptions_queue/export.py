"""The retraining export: every current human label and every ground truth from /feedback,
with its prediction, streamed.

Each row says where its label came from (``source``: review, adjudication or
feedback) and how much it stands for (``weight``: the inverse of the probability
with which its record was chosen for review, 1 for feedback and for labels that
were not a probability sample), so retraining can weight audits apart from hard
cases.

Labels are read in keyset pages of :data:`PAGE` rows, each page in its own short
read transaction, and written out page by page — JSON lines and CSV as they
come, Parquet one row group per page into a spooled temporary file (Parquet's
footer comes last, so the file is finished before it is sent). Memory stays at
one page whatever the export's size.
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import io
import itertools
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from exceptions_queue import repository

Format = Literal["jsonl", "csv", "parquet"]
PAGE = 5_000
CHUNK = 1 << 20
SPOOL_BYTES = 32 << 20

MEDIA_TYPES: dict[Format, str] = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}

# the columns of every row besides the features, in order
META = (
    "label_id",
    "prediction_id",
    "timestamp",
    "model_version",
    "prediction",
    "confidence",
    "label",
    "source",
    "weight",
    "ticket_id",
    "ticket_kind",
    "labelled_by",
    "labelled_at",
    "note",
)

Sessions = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class ExportSpec:
    """What to export: one model's labels in [since, until)."""

    model_id: int
    task: str
    features: tuple[tuple[str, str], ...]  # (name, "numerical" | "categorical")
    since: dt.datetime | None
    until: dt.datetime

    def feature_columns(self) -> list[tuple[str, str, str]]:
        """(feature, column name, kind): the feature's name, unless a meta column has it."""
        return [
            (name, f"feature:{name}" if name in META else name, kind)
            for name, kind in self.features
        ]


# the export's sources: Label.source as the contract names it
_SOURCE = {"review": "review", "second_review": "review", "adjudication": "adjudication"}


def _weight(probability: float | None) -> float:
    """The inverse inclusion probability; 1 for a label that was not a probability sample."""
    return 1.0 if not probability else 1.0 / probability


def _pages(
    sessions: Sessions, spec: ExportSpec, read: Callable[..., list[Any]], at: str
) -> Iterator[Any]:
    """Every row of a keyset-paged ``read`` (keyed by the row's ``at`` time and id)."""
    after: tuple[dt.datetime, int] | None = None
    while True:
        with sessions() as session:
            rows = read(
                session,
                model_id=spec.model_id,
                since=spec.since,
                until=spec.until,
                after=after,
                limit=PAGE,
            )
        yield from rows
        if len(rows) < PAGE:
            return
        after = (getattr(rows[-1], at), rows[-1].id)


def _common(r: Any) -> dict[str, Any]:
    return {
        "prediction_id": r.client_id,
        "timestamp": r.ts,
        "model_version": r.model_version,
        "features": r.features,
        "prediction": r.prediction,
        "confidence": r.confidence,
    }


def _human_labels(sessions: Sessions, spec: ExportSpec) -> Iterator[dict[str, Any]]:
    for r in _pages(sessions, spec, repository.export_page, "labelled_at"):
        yield {
            "label_id": r.id,
            **_common(r),
            "label": r.label,
            "source": _SOURCE.get(r.source, r.source),
            "weight": _weight(r.inclusion_probability),
            "ticket_id": r.ticket_id,
            "ticket_kind": r.ticket_kind,
            "labelled_by": r.labelled_by_name,
            "labelled_at": r.labelled_at,
            "note": r.note,
        }


def _feedback(sessions: Sessions, spec: ExportSpec) -> Iterator[dict[str, Any]]:
    for r in _pages(sessions, spec, repository.feedback_page, "actual_at"):
        yield {
            "label_id": None,
            **_common(r),
            "label": r.actual,
            "source": "feedback",
            "weight": 1.0,
            "ticket_id": None,
            "ticket_kind": None,
            "labelled_by": None,
            "labelled_at": r.actual_at,
            "note": None,
        }


def records(sessions: Sessions, spec: ExportSpec) -> Iterator[list[dict[str, Any]]]:
    """Pages of export records (each a dict with ``features`` nested), oldest label first.

    Human labels and ground truth from /feedback are read as two keyset streams
    and merged by the time each label was given.
    """
    merged = heapq.merge(
        _human_labels(sessions, spec),
        _feedback(sessions, spec),
        key=lambda r: r["labelled_at"],
    )
    while page := list(itertools.islice(merged, PAGE)):
        yield page


def jsonl(pages: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    for page in pages:
        yield b"".join(
            orjson.dumps(r, option=orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE) for r in page
        )


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def csv_rows(pages: Iterator[list[dict[str, Any]]], spec: ExportSpec) -> Iterator[bytes]:
    columns = spec.feature_columns()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*META, *(column for _, column, _ in columns)])
    yield buf.getvalue().encode()
    for page in pages:
        buf.seek(0)
        buf.truncate()
        for r in page:
            features = r["features"] or {}
            writer.writerow(
                [_cell(r[m]) for m in META] + [_cell(features.get(name)) for name, _, _ in columns]
            )
        yield buf.getvalue().encode()


def arrow_schema(spec: ExportSpec) -> pa.Schema:
    output = pa.string() if spec.task == "classification" else pa.float64()
    when = pa.timestamp("us", tz="UTC")
    fields = [
        pa.field("label_id", pa.int64()),  # null for ground truth from /feedback
        pa.field("prediction_id", pa.string(), nullable=False),
        pa.field("timestamp", when),
        pa.field("model_version", pa.string()),
        pa.field("prediction", output),
        pa.field("confidence", pa.float64()),
        pa.field("label", output),
        pa.field("source", pa.string()),
        pa.field("weight", pa.float64()),
        pa.field("ticket_id", pa.int64()),
        pa.field("ticket_kind", pa.string()),
        pa.field("labelled_by", pa.string()),
        pa.field("labelled_at", when),
        pa.field("note", pa.string()),
    ]
    for _, column, kind in spec.feature_columns():
        fields.append(pa.field(column, pa.float64() if kind == "numerical" else pa.string()))
    return pa.schema(fields)


def _typed(values: Sequence[Any], kind: str) -> list[Any]:
    if kind == "numerical":
        return [None if v is None else float(v) for v in values]
    return [None if v is None else str(v) for v in values]


def _table(page: list[dict[str, Any]], spec: ExportSpec, schema: pa.Schema) -> pa.Table:
    output_kind = "categorical" if spec.task == "classification" else "numerical"
    data: dict[str, list[Any]] = {m: [r[m] for r in page] for m in META}
    data["prediction"] = _typed(data["prediction"], output_kind)
    data["label"] = _typed(data["label"], output_kind)
    for name, column, kind in spec.feature_columns():
        data[column] = _typed([(r["features"] or {}).get(name) for r in page], kind)
    return pa.Table.from_pydict(data, schema=schema)


def parquet(pages: Iterator[list[dict[str, Any]]], spec: ExportSpec) -> Iterator[bytes]:
    schema = arrow_schema(spec)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        writer = pq.ParquetWriter(spool, schema, compression="zstd")
        try:
            for page in pages:
                writer.write_table(_table(page, spec, schema), row_group_size=PAGE)
        finally:
            writer.close()
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk


def stream(sessions: Sessions, spec: ExportSpec, fmt: Format) -> Iterator[bytes]:
    """The export as a byte stream in ``fmt``."""
    pages = records(sessions, spec)
    if fmt == "jsonl":
        return jsonl(pages)
    if fmt == "csv":
        return csv_rows(pages, spec)
    return parquet(pages, spec)
