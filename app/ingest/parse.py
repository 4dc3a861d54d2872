"""Decode and validate a batch of predictions, column-wise.

A batch is decoded straight from the request bytes by msgspec into typed structs
(strict types, checked in C): the record fields, then every record's features
at once into a struct made for the model's schema, so a numerical feature
arrives as a float (or null) and a category as a string or an integer. The
columns the sketches and the rules need come out of that with one transposition
(no per-record loop over the features), and each record's features are stored
as the JSON text it was sent as (no re-serialising).

When that fast decoder refuses anything at all (a wrong type, a NaN token, a
number out of range, a single record instead of a batch, a non-strict model's
extra features...), the batch goes through the general path instead: JSON,
pydantic and per-column checks (:func:`validate_batch`), which raises the
contract's 422 naming the record and the field. Every batch the fast decoder
accepts, the general path accepts too, with the same values: the fast path
only saves time, it never decides.

The general path has one JSON parser, orjson, which refuses what JSON refuses
(NaN, Infinity, numbers beyond a double, nesting deeper than 1024 levels); its
error position becomes the field's location (:func:`path_at`, a scan of the
text before it without recursion), so no body can make decoding fail another
way (a second, recursive parser once ran out of stack on deep nesting: a 500).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson
from pydantic import TypeAdapter, ValidationError

from app.errors import (
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    validation_error_from_pydantic,
)
from app.ingest.columns import Columns, add_outputs, feature_columns
from app.schemas import PredictionIn
from app.settings import Settings
from exceptions_queue.labels import LabelRefused, valid_label
from storage.tables import MonitoredModel

PROBABILITY_TOLERANCE = 0.01
NUL_MESSAGE = "contains the NUL character (U+0000), which PostgreSQL cannot store: remove it"

_records = TypeAdapter(list[PredictionIn])


@dataclass
class ValidatedBatch:
    """A batch that passed every check, as columns (one list or array per field)."""

    client_ids: list[str]
    timestamps: list[dt.datetime]
    outputs: list[Any]
    confidence: npt.NDArray[np.float64]
    # None when no record sent any (the usual case)
    probabilities: list[dict[str, float] | None] | None
    model_versions: list[str | None]
    # each record's features as JSON text (UTF-8), as stored
    features_json: list[bytes]
    columns: Columns  # features plus __prediction__ and __confidence__

    @property
    def rows(self) -> int:
        return len(self.client_ids)

    def probabilities_of(self, i: int) -> dict[str, float] | None:
        return None if self.probabilities is None else self.probabilities[i]


# --------------------------------------------------------------------------- general path
# strings (with their escapes) and the structural characters, found by the regex engine
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]', re.DOTALL)

# orjson's messages for values JSON has no spelling for
_NOT_FINITE = ("expected a JSON value", "infinity when parsed as double", "no digit after sign")


def check_content_type(content_type: str | None) -> None:
    """415 unless the body is JSON (a missing content type is taken as JSON)."""
    ctype = content_type or "application/json"
    if "json" not in ctype:
        raise UnsupportedMediaType(f"send application/json, not {ctype!r}")


def parse_json(raw: bytes, content_type: str | None) -> Any:
    """The body as JSON, or a 415/422 in the contract's shape (never another error)."""
    check_content_type(content_type)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _decode_error(raw, exc) from None
    if b"\\u0000" in raw:  # one scan of the bytes; the walk only when it may be there
        where = nul_at(data)
        if where is not None:
            raise ValidationFailed.at(
                where or ["body"],
                NUL_MESSAGE,
            )
    return data


def _decode_error(raw: bytes, exc: orjson.JSONDecodeError) -> ValidationFailed:
    reason = exc.msg
    if reason.startswith("depth limit exceeded"):
        return ValidationFailed.at(
            ["body"], "the body is nested more than 1024 levels deep: send flat records"
        )
    text = raw.decode("utf-8", errors="replace")
    if any(marker in reason for marker in _NOT_FINITE):
        token = text[exc.pos : exc.pos + 9].lstrip("-")
        if token.startswith(("NaN", "Infinity")) or "infinity" in reason:
            loc = path_at(text, exc.pos)
            return ValidationFailed.at(
                loc or ["body"],
                "NaN and infinite numbers are not JSON and cannot be stored: "
                "send a finite number, or null for a missing value",
            )
    return ValidationFailed(
        f"the body is not valid JSON: {reason} (line {exc.lineno}, column {exc.colno})",
        details=[{"loc": ["body"], "msg": reason}],
    )


def path_at(text: str, pos: int) -> list[str | int]:
    """The location of the value at ``pos`` in JSON ``text``, from the text before it.

    >>> path_at('{"predictions": [{"id": 1}, {"features": {"age": NaN}}]}', 49)
    ['predictions', 1, 'features', 'age']
    """
    stack: list[list[Any]] = []  # [container, key or index, after_colon]
    for match in _TOKENS.finditer(text, 0, pos):
        token = match.group()
        if token in "{[":
            stack.append(["{", None, False] if token == "{" else ["[", 0, False])
        elif token in "}]":
            if stack:
                stack.pop()
        elif token == ",":
            if stack and stack[-1][0] == "[":
                stack[-1][1] += 1
            elif stack:
                stack[-1][1:] = [None, False]
        elif token == ":":
            if stack:
                stack[-1][2] = True
        elif stack and stack[-1][0] == "{" and not stack[-1][2]:  # a key
            try:
                stack[-1][1] = orjson.loads(token)
            except orjson.JSONDecodeError:
                stack[-1][1] = token[1:-1]
    return [frame[1] for frame in stack if frame[0] == "[" or frame[2]]


def nul_at(value: Any) -> list[str | int] | None:
    """Where the first string (or key) holding U+0000 is, if any (no recursion)."""
    pending: list[tuple[Any, list[str | int]]] = [(value, [])]
    while pending:
        node, loc = pending.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return loc
        elif isinstance(node, dict):
            for key in node:
                if "\x00" in key:
                    return [*loc, key]
            pending.extend((item, [*loc, key]) for key, item in reversed(node.items()))
        elif isinstance(node, list):
            pending.extend((item, [*loc, i]) for i, item in reversed(list(enumerate(node))))
    return None


def parse_records(data: Any, settings: Settings) -> tuple[list[PredictionIn], list[str | int]]:
    """The records of a body (a batch or one record) and the path of their list."""
    if isinstance(data, dict) and "predictions" in data:
        items = data["predictions"]
        if not isinstance(items, list):
            raise ValidationFailed.at(["predictions"], "must be a list of records")
        _check_size(len(items), settings)
        if set(data) != {"predictions"}:
            extra = sorted(set(data) - {"predictions"})[0]
            raise ValidationFailed.at([extra], "unknown field")
        try:
            return _records.validate_python(items), ["predictions"]
        except ValidationError as exc:
            raise validation_error_from_pydantic(
                exc.errors(), ["predictions"], data=items
            ) from None
    try:
        return [PredictionIn.model_validate(data)], []
    except ValidationError as exc:
        raise validation_error_from_pydantic(exc.errors(), data=data) from None


def _check_size(n: int, settings: Settings) -> None:
    if n > settings.max_batch_records:
        raise PayloadTooLarge(
            f"batch of {n} records is over the limit of {settings.max_batch_records}: split it"
        )
    if not n:
        raise ValidationFailed.at(["predictions"], "the batch is empty")


def _loc(prefix: Sequence[str | int], i: int, *rest: str | int) -> list[str | int]:
    return [*prefix, i, *rest] if prefix else [*rest]


def _check_outputs(
    model: MonitoredModel,
    predictions: Sequence[Any],
    probabilities: Sequence[Mapping[str, float] | None],
    confidence: npt.NDArray[np.float64],
    prefix: Sequence[str | int],
) -> list[Any]:
    """Check each record's prediction and probabilities; returns the outputs as stored.

    Fills ``confidence`` from the probabilities where a record sent none.
    """
    labels = set(model.labels or ())
    outputs: list[Any] = []
    classification = model.task == "classification"
    for i, (sent, probs) in enumerate(zip(predictions, probabilities, strict=True)):
        out = sent
        try:
            checked = valid_label(model, sent, what="prediction")
        except LabelRefused as refused:
            raise ValidationFailed.at(_loc(prefix, i, "prediction"), str(refused)) from None
        if classification:  # a regression output is stored as it was sent
            out = checked
        outputs.append(out)
        if probs is not None:
            if not classification:
                raise ValidationFailed.at(
                    _loc(prefix, i, "probabilities"), "probabilities are for classification models"
                )
            extra = set(probs) - labels
            if extra:
                raise ValidationFailed.at(
                    _loc(prefix, i, "probabilities", sorted(extra)[0]),
                    "not one of the model's labels",
                )
            total = sum(probs.values())
            if abs(total - 1.0) > PROBABILITY_TOLERANCE:
                raise ValidationFailed.at(
                    _loc(prefix, i, "probabilities"),
                    f"probabilities must sum to 1 (they sum to {total:.4f})",
                )
            if math.isnan(confidence[i]) and probs:
                confidence[i] = max(probs.values())
    return outputs


def validate_batch(
    model: MonitoredModel,
    records: Sequence[PredictionIn],
    *,
    now: dt.datetime,
    prefix: Sequence[str | int] = ("predictions",),
) -> ValidatedBatch:
    """Check parsed records against the model's schema; raise a 422 naming the first bad field.

    ``prefix`` is the path of the record list in the request (empty for a single record).
    """
    columns = feature_columns(
        model.features,
        [r.features for r in records],
        strict=model.strict,
        loc=lambda i, name: _loc(prefix, i, "features", name),
    )
    confidence = np.array(
        [np.nan if r.confidence is None else r.confidence for r in records], dtype=np.float64
    )
    probabilities = [r.probabilities for r in records]
    outputs = _check_outputs(
        model, [r.prediction for r in records], probabilities, confidence, prefix
    )
    add_outputs(columns, task=model.task, outputs=outputs, confidence=confidence)
    return ValidatedBatch(
        client_ids=[r.id or f"dd-{uuid.uuid4().hex}" for r in records],
        timestamps=[r.timestamp or now for r in records],
        outputs=outputs,
        confidence=confidence,
        probabilities=probabilities if any(p is not None for p in probabilities) else None,
        model_versions=[r.model_version for r in records],
        features_json=[orjson.dumps(r.features) for r in records],
        columns=columns,
    )


# --------------------------------------------------------------------------- fast path
Probability = Annotated[float, msgspec.Meta(ge=0, le=1)]


class _Record(msgspec.Struct, forbid_unknown_fields=True):
    """One record of a batch as API.md defines it; the features are kept as sent."""

    features: msgspec.Raw
    prediction: str | int | float
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    timestamp: Annotated[dt.datetime, msgspec.Meta(tz=True)] | None = None
    confidence: Probability | None = None
    probabilities: dict[str, Probability] | None = None
    model_version: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    predictions: list[_Record]


_batch_decoder = msgspec.json.Decoder(_Batch)
_FAST_REFUSED = (msgspec.DecodeError, msgspec.ValidationError)


@dataclass(frozen=True)
class _FeatureDecoder:
    """Decodes a JSON list of feature objects into structs typed by the model's schema."""

    decoder: msgspec.json.Decoder[list[Any]]
    names: tuple[str, ...]
    numerical: tuple[bool, ...]

    def columns(self, raw_list: bytes, rows: int) -> dict[str, Any] | None:
        """The feature columns, or None where the general path must decide."""
        structs = self.decoder.decode(raw_list)
        values: dict[str, Any] = {}
        if not self.names:
            return values
        # one transposition: a tuple of values per feature
        transposed = zip(*map(msgspec.structs.astuple, structs), strict=True)
        for name, numerical, column in zip(self.names, self.numerical, transposed, strict=True):
            if numerical:
                arr = np.array(column, dtype=np.float64)  # null -> NaN
                if np.isinf(arr).any():  # (msgspec refuses NaN tokens; huge numbers overflow)
                    return None
                values[name] = arr
            else:
                cats = np.empty(rows, dtype=object)
                if int in set(map(type, column)):
                    cats[:] = [str(v) if type(v) is int else v for v in column]
                else:
                    cats[:] = column
                values[name] = cats
        return values


@functools.lru_cache(maxsize=256)
def _feature_decoder(schema: tuple[tuple[str, str], ...]) -> _FeatureDecoder:
    """A decoder for the features of a strict model with ``schema`` ((name, type) pairs)."""
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for k, (name, kind) in enumerate(schema):
        attr = f"f{k}"  # any feature name, even one that is no Python identifier
        rename[attr] = name
        fields.append((attr, (float | None) if kind == "numerical" else (str | int | None), None))
    struct = msgspec.defstruct("Features", fields, forbid_unknown_fields=True, rename=rename)
    return _FeatureDecoder(
        msgspec.json.Decoder(list[struct]),  # type: ignore[valid-type]
        tuple(name for name, _ in schema),
        tuple(kind == "numerical" for _, kind in schema),
    )


_ESCAPES = (b"\\", b"\t", b"\n", b"\r")


def decode_batch(
    raw: bytes, model: MonitoredModel, *, now: dt.datetime, settings: Settings
) -> ValidatedBatch | None:
    """The batch in ``raw`` validated column-wise; None when the general path must decide.

    Only ``{"predictions": [...]}`` bodies of a strict model whose every value
    has its exact type take this path: anything else returns None.
    """
    if not model.strict or b"\\u0000" in raw:
        return None
    try:
        records = _batch_decoder.decode(raw).predictions
    except _FAST_REFUSED:
        return None
    n = len(records)
    if not 0 < n <= settings.max_batch_records:
        return None
    schema = tuple((f["name"], f["type"]) for f in model.features)
    raw_features = [bytes(r.features) for r in records]
    try:
        values = _feature_decoder(schema).columns(b"[" + b",".join(raw_features) + b"]", n)
    except _FAST_REFUSED:
        return None
    if values is None:
        return None
    confidence = np.array(
        list(map(operator.attrgetter("confidence"), records)), dtype=np.float64
    )  # None -> NaN
    probabilities = [r.probabilities for r in records]
    given = any(p is not None for p in probabilities)
    predictions = list(map(operator.attrgetter("prediction"), records))
    try:
        outputs = _fast_outputs(model, predictions)
        if outputs is None or given:
            outputs = _check_outputs(model, predictions, probabilities, confidence, ["predictions"])
    except ValidationFailed:
        return None  # the general path raises it, as it always did
    columns = Columns(n, values)
    add_outputs(columns, task=model.task, outputs=outputs, confidence=confidence)
    ids = [r.id for r in records]
    stamps = [r.timestamp for r in records]
    return ValidatedBatch(
        client_ids=[i or f"dd-{uuid.uuid4().hex}" for i in ids] if None in ids else ids_of(ids),
        timestamps=[t or now for t in stamps] if None in stamps else ids_of(stamps),
        outputs=outputs,
        confidence=confidence,
        probabilities=probabilities if given else None,
        model_versions=[r.model_version for r in records],
        features_json=raw_features,
        columns=columns,
    )


def ids_of(values: list[Any]) -> list[Any]:
    """``values``, known to hold no None (for the type checker)."""
    return values


def _fast_outputs(model: MonitoredModel, predictions: list[Any]) -> list[Any] | None:
    """The outputs when every prediction is a model's label (or a regression number)."""
    types = set(map(type, predictions))
    if model.task == "classification":
        if types == {str} and set(predictions) <= set(model.labels or ()):
            return predictions
        return None
    if types <= {int, float} and all(map(math.isfinite, predictions)):
        return predictions
    return None


def needs_escaping(raw: bytes) -> bool:
    """Whether any stored JSON text of ``raw`` may hold a character COPY text escapes."""
    return any(c in raw for c in _ESCAPES)


ParseFn = Callable[[MonitoredModel], ValidatedBatch]


def batch_parser(
    raw: bytes, content_type: str | None, *, now: dt.datetime, settings: Settings
) -> ParseFn:
    """A function validating the body against a model (the fast path, else the general one).

    The body is parsed once for the general path, whichever model it is then
    validated against (a model changed meanwhile is validated again).
    """
    parsed: list[tuple[list[PredictionIn], list[str | int]]] = []

    def parse(model: MonitoredModel) -> ValidatedBatch:
        if content_type is not None and "json" not in content_type:
            raise UnsupportedMediaType(f"send application/json, not {content_type!r}")
        fast = decode_batch(raw, model, now=now, settings=settings)
        if fast is not None:
            return fast
        if not parsed:
            parsed.append(parse_records(parse_json(raw, content_type), settings))
        records, prefix = parsed[0]
        return validate_batch(model, records, now=now, prefix=prefix)

    return parse
