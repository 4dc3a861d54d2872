"""Reading a reference body in bounded chunks: rows are counted as they are read.

A reference may hold up to ``max_reference_rows`` rows, but its body's size
says little about its rows: 150 MB of tiny JSON records were 6.5 million Python
dicts (4 GB) before the row limit was even checked. Here every format is read
a chunk of rows at a time, each chunk turned into compact columns at once, and
the row limit is enforced as soon as it is passed, so peak memory follows the
row limit, not the body:

- JSON (``{"records": [...]}``, at most ``max_body_bytes`` like a prediction
  batch): the records are delimited by a regular expression that matches a
  flat record (features and outputs as plain values, as the contract has them)
  and parsed with orjson a chunk at a time; anything else falls back to the
  ordinary parser, only for bodies small enough for that to be harmless;
- CSV: pandas reads the upload in chunks of rows;
- Parquet: the row count is in the file's footer (refused before a row is
  read), then record batches are read one at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import partial
from typing import IO, Any

import numpy as np
import pandas as pd

from app.errors import PayloadTooLarge, ValidationFailed
from app.ingest import parse
from app.ingest.columns import Columns
from storage.tables import MonitoredModel

CHUNK_ROWS = 20_000
# A body that is not shaped as the fast path expects is parsed whole only under this.
WHOLE_PARSE_BYTES = 1 << 20

_STRING = rb'"(?:[^"\\]++|\\.)*+"'
_FLAT = rb'(?:[^{}\[\]"]++|' + _STRING + rb")*+"
_RECORD = rb'\{(?:[^{}\[\]"]++|' + _STRING + rb"|\{" + _FLAT + rb"\}|\[" + _FLAT + rb"\])*+\}"
# up to CHUNK_ROWS records, each followed by a comma or (not consumed) the closing bracket
_RECORDS = re.compile(rb"(?:" + _RECORD + rb"\s*+(?:,\s*+|(?=\]))){1,%d}" % CHUNK_ROWS)
_PREFIX = re.compile(rb'\s*\{\s*"records"\s*:\s*\[\s*')
_SUFFIX = re.compile(rb"\]\s*\}\s*\Z")


def too_many_rows(max_rows: int, rows: int | None = None) -> PayloadTooLarge:
    """413: ``rows`` when known (a Parquet footer), else reading stopped past the limit."""
    size = f"{rows}" if rows is not None else f"more than {max_rows}"
    return PayloadTooLarge(
        f"reference of {size} rows is over the limit of {max_rows} "
        "(DRIFTDESK_MAX_REFERENCE_ROWS): upload a random sample"
    )


def concat(parts: list[Columns]) -> Columns:
    """One ``Columns`` from chunks; a column some chunks lack is missing (NaN/None) there."""
    if len(parts) == 1:
        return parts[0]
    names: dict[str, np.dtype[Any]] = {}
    for part in parts:
        for name, column in part.values.items():
            names.setdefault(name, column.dtype)
    values: dict[str, Any] = {}
    for name, dtype in names.items():
        pieces = []
        for part in parts:
            if name in part.values:
                pieces.append(part.values[name])
            elif dtype == np.float64:
                pieces.append(np.full(part.rows, np.nan))
            else:
                pieces.append(np.full(part.rows, None, dtype=object))
        values[name] = np.concatenate(pieces) if pieces else np.empty(0)
    return Columns(sum(p.rows for p in parts), values)


def _shifted(exc: ValidationFailed, where: Callable[[list[Any]], list[Any]]) -> ValidationFailed:
    for detail in exc.details:
        detail["loc"] = where(list(detail["loc"]))
    return exc


def json_columns(
    model: MonitoredModel,
    raw: bytes,
    *,
    max_rows: int,
    from_records: Callable[[MonitoredModel, list[Any]], Columns],
    whole: Callable[[Any], Columns],
) -> Columns:
    """Columns of a JSON reference body, a chunk of records at a time.

    ``from_records`` validates a chunk (locations relative to it); ``whole``
    handles an already parsed body (the fallback for bodies of another shape).
    """
    start = _PREFIX.match(raw)
    if start is None:
        return whole(_parse_small(raw))
    pos, rows, parts = start.end(), 0, []
    while (match := _RECORDS.match(raw, pos)) is not None:
        chunk = raw[pos : match.end()].rstrip().rstrip(b",")
        offset = rows
        try:
            records = parse.parse_json(b"[" + chunk + b"]", None)
        except ValidationFailed as exc:
            raise _shifted(exc, partial(_records_loc, offset=offset)) from None
        rows += len(records)
        if rows > max_rows:
            raise too_many_rows(max_rows)
        try:
            parts.append(from_records(model, records))
        except ValidationFailed as exc:
            raise _shifted(exc, partial(_records_loc, offset=offset, first=1)) from None
        pos = match.end()
    if _SUFFIX.match(raw, pos) is None:
        if len(raw) <= WHOLE_PARSE_BYTES:  # say exactly what is wrong
            return whole(_parse_small(raw))
        raise ValidationFailed.at(
            ["records", rows],
            f"record {rows} (byte {pos}) is not a flat JSON object, or the body is not "
            '{"records": [...]} with nothing else: features and outputs are plain values',
        )
    if not parts:
        return from_records(model, [])
    return concat(parts)


def _records_loc(loc: list[Any], *, offset: int, first: int = 0) -> list[Any]:
    """``[i, ...]`` (``first=0``, a parse error) or ``["records", i, ...]`` (``first=1``) of
    a chunk, as the body's ``["records", offset + i, ...]``."""
    if len(loc) > first and isinstance(loc[first], int):
        return ["records", loc[first] + offset, *loc[first + 1 :]]
    return loc


def _parse_small(raw: bytes) -> Any:
    if len(raw) > WHOLE_PARSE_BYTES:
        raise ValidationFailed.at(
            ["records"], 'send {"records": [...]} (an object with that one field) or a file upload'
        )
    return parse.parse_json(raw, None)


def table_columns(
    model: MonitoredModel,
    file: IO[bytes],
    *,
    is_parquet: bool,
    max_rows: int,
    from_frame: Callable[[MonitoredModel, pd.DataFrame], Columns],
) -> Columns:
    """Columns of an uploaded CSV or Parquet file, ``CHUNK_ROWS`` rows at a time."""
    rows, parts = 0, []
    for frame in _frames(file, is_parquet=is_parquet, max_rows=max_rows):
        offset = rows
        rows += len(frame)
        if rows > max_rows:
            raise too_many_rows(max_rows)
        try:
            parts.append(from_frame(model, frame.reset_index(drop=True)))
        except ValidationFailed as exc:
            raise _shifted(exc, partial(_file_row_loc, offset=offset)) from None
    if not parts:
        raise ValidationFailed.at(["file"], "the file has no rows")
    return concat(parts)


def _file_row_loc(loc: list[Any], *, offset: int) -> list[Any]:
    if loc[:2] == ["file", "row"] and isinstance(loc[2], int):
        return ["file", "row", loc[2] + offset, *loc[3:]]
    return loc


def _frames(file: IO[bytes], *, is_parquet: bool, max_rows: int) -> Iterable[pd.DataFrame]:
    kind = "Parquet" if is_parquet else "CSV"
    try:
        if is_parquet:
            import pyarrow.parquet as pq

            table = pq.ParquetFile(file)
            if table.metadata.num_rows > max_rows:
                raise too_many_rows(max_rows, table.metadata.num_rows)
            batches = table.iter_batches(batch_size=CHUNK_ROWS)
            frames: Iterable[pd.DataFrame] = (b.to_pandas() for b in batches)
        else:
            frames = pd.read_csv(file, chunksize=CHUNK_ROWS)
        yield from frames
    except (ValidationFailed, PayloadTooLarge):
        raise
    except Exception as exc:
        raise ValidationFailed.at(["file"], f"could not read the file as {kind}: {exc}") from None
