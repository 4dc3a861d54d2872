"""Records to columns: validation against a model's schema, one numpy array per feature.

This is the vectorised half of validation: pydantic checks each record's shape;
here each feature is checked once per batch (types with a set of ``type``s, NaN and
infinity with numpy), never value by value in Python unless there is an error
to locate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.errors import ValidationFailed

NUMERIC_TYPES = frozenset({int, float, type(None)})
SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
CATEGORY_TYPES = frozenset({str, int, type(None)})
PREDICTION = "__prediction__"
CONFIDENCE = "__confidence__"

Loc = Callable[[int, str], list[str | int]]
FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]


@dataclass
class Columns:
    """A batch as columns: numerical float64 with NaN for missing, categorical object/None."""

    rows: int
    values: dict[str, FloatArray | ObjectArray]

    def take(self, positions: npt.NDArray[np.intp]) -> Columns:
        return Columns(len(positions), {k: v[positions] for k, v in self.values.items()})


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def numerical_column(values: Sequence[Any], *, loc: Callable[[int], list[str | int]]) -> FloatArray:
    """Numbers (``None`` = missing) as float64; anything else, NaN or infinity is a 422."""
    if not set(map(type, values)) <= NUMERIC_TYPES:
        i, bad = next((i, v) for i, v in enumerate(values) if type(v) not in NUMERIC_TYPES)
        raise ValidationFailed.at(loc(i), f"must be a number or null, not {_describe(bad)}")
    try:
        arr = np.array(values, dtype=np.float64)
    except OverflowError:
        i = next(i for i, v in enumerate(values) if isinstance(v, int) and abs(v) > 2**1023)
        raise ValidationFailed.at(loc(i), "number too large") from None
    not_finite = ~np.isfinite(arr)
    if not_finite.any():
        for pos in np.flatnonzero(not_finite).tolist():
            if values[pos] is not None:
                raise ValidationFailed.at(
                    loc(pos),
                    "must be a finite number: NaN and infinity are refused (send null for a missing value)",
                )
    return arr


def categorical_column(
    values: Sequence[Any], *, loc: Callable[[int], list[str | int]]
) -> ObjectArray:
    """Categories as strings (integers are accepted and turned into strings)."""
    types = set(map(type, values))
    if not types <= CATEGORY_TYPES:
        i, bad = next((i, v) for i, v in enumerate(values) if type(v) not in CATEGORY_TYPES)
        raise ValidationFailed.at(loc(i), f"must be a string or null, not {_describe(bad)}")
    arr = np.empty(len(values), dtype=object)
    if int in types:
        arr[:] = [str(v) if type(v) is int else v for v in values]
    else:
        arr[:] = values
    return arr


def feature_columns(
    features: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    *,
    strict: bool,
    loc: Loc,
) -> Columns:
    """Validate ``rows`` (feature dicts) against the model's features and return columns.

    ``loc(i, name)`` names the field of row ``i`` in the error (API.md's ``details``).
    """
    known = {f["name"] for f in features}
    seen: set[str] = set().union(*(r.keys() for r in rows)) if rows else set()
    unknown = seen - known
    if unknown and strict:
        name = sorted(unknown)[0]
        i = next(i for i, r in enumerate(rows) if name in r)
        raise ValidationFailed.at(
            loc(i, name),
            f"unknown feature {name!r}: the model is strict; add the feature to the model "
            "or PATCH it with strict=false",
        )
    for name in sorted(unknown):  # kept as sent: each must still be a plain finite value
        for i, r in enumerate(rows):
            value = r.get(name)
            if type(value) not in SCALAR_TYPES:
                raise ValidationFailed.at(
                    loc(i, name),
                    f"must be a number, a string, a boolean or null, not {_describe(value)}",
                )
            if type(value) is float and not math.isfinite(value):
                raise ValidationFailed.at(loc(i, name), "must be a finite number")
    values: dict[str, FloatArray | ObjectArray] = {}
    for f in features:
        name = f["name"]
        column = [r.get(name) for r in rows]
        where = functools.partial(_loc_of, loc, name)
        if f["type"] == "numerical":
            values[name] = numerical_column(column, loc=where)
        else:
            values[name] = categorical_column(column, loc=where)
    return Columns(len(rows), values)


def add_outputs(
    columns: Columns, *, task: str, outputs: Sequence[Any], confidence: FloatArray
) -> None:
    """Add the model's outputs, which drift watches like features: prediction and confidence."""
    columns.values[PREDICTION] = np.array(
        outputs, dtype=object if task == "classification" else np.float64
    )
    columns.values[CONFIDENCE] = confidence


def _loc_of(loc: Loc, name: str, i: int) -> list[str | int]:
    return loc(i, name)


def missing_mask(column: FloatArray | ObjectArray) -> npt.NDArray[np.bool_]:
    if column.dtype == np.float64:
        return np.isnan(column)
    return np.fromiter((v is None for v in column), dtype=bool, count=len(column))


def probability_matrix(
    labels: Sequence[str], given: Sequence[Mapping[str, float] | None]
) -> FloatArray | None:
    """Records' probabilities as a (rows, labels) matrix in ``labels`` order (a label a
    record left out is 0), NaN rows where a record gave none; None when none gave any."""
    if not any(given):
        return None
    nan_row = [math.nan] * len(labels)
    return np.array(
        [[p.get(label, 0.0) for label in labels] if p else nan_row for p in given],
        dtype=np.float64,
    )
