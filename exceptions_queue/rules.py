"""The exception rules, vectorised over a batch: which predictions become tickets.

Pure numpy: a batch arrives as columns (one array per feature, plus the
confidence and, for classifiers, a probability matrix), the rules return
positions, never loop over records in Python.

>>> import numpy as np
>>> cfg = RuleConfig(confidence_threshold=0.6)
>>> columns = {"__confidence__": np.array([0.9, 0.4, np.nan, 0.59])}
>>> found = evaluate(columns, None, cfg, np.random.default_rng(0))
>>> found.low_confidence.positions.tolist()
[1, 3]
>>> found.low_confidence.rules
('confidence', 'confidence')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

CONFIDENCE = "__confidence__"
EXAMPLES_PER_GROUP = 5
_NONE = np.array([None], dtype=object)

Positions = npt.NDArray[np.intp]
Floats = npt.NDArray[np.float64]
QualityRule = Literal["missing_required", "out_of_range", "unseen_category"]


@dataclass(frozen=True)
class RuleConfig:
    """A model's exception rules, and what its reference says is normal.

    ``ranges`` and ``categories`` come from the reference; a model without one has
    neither, so only the missing-required-feature rule applies to it.
    ``categories`` holds only complete category sets (a reference whose long
    tail was cut cannot say a category was never seen).
    """

    confidence_threshold: float | None = None
    margin_threshold: float | None = None
    entropy_threshold: float | None = None
    audit_rate: float = 0.0
    out_of_range_tolerance: float = 0.5
    required: tuple[str, ...] = ()
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    categories: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class LowConfidence:
    """Positions below a confidence rule, the first rule each broke, and their values."""

    positions: Positions
    rules: tuple[str, ...]
    confidence: Floats
    margin: Floats
    entropy: Floats


@dataclass(frozen=True)
class QualityBreak:
    """Records of one batch breaking one data-quality rule on one feature."""

    feature: str
    rule: QualityRule
    positions: Positions
    # the offending values of the first few positions (None where missing)
    examples: tuple[Any, ...]


@dataclass(frozen=True)
class Findings:
    low_confidence: LowConfidence
    audit: Positions
    quality: tuple[QualityBreak, ...]
    # every record's uniform audit draw: a record is audited when its draw is below the
    # audit rate in force, so a rate raised later (exceptions_queue.sampling) reuses it
    draw: Floats = field(default_factory=lambda: np.zeros(0))


def margin_and_entropy(probabilities: Floats) -> tuple[Floats, Floats]:
    """Top-1 minus top-2 probability, and entropy in nats, per row (NaN rows stay NaN).

    >>> p = np.array([[0.5, 0.3, 0.2], [np.nan, np.nan, np.nan], [1.0, 0.0, 0.0]])
    >>> m, h = margin_and_entropy(p)
    >>> np.round(m, 3).tolist()
    [0.2, nan, 1.0]
    >>> np.round(h, 3).tolist()
    [1.03, nan, 0.0]
    """
    n, k = probabilities.shape
    if k < 2:
        return np.full(n, np.nan), np.full(n, np.nan)
    top = -np.partition(-probabilities, 1, axis=1)[:, :2]
    margin = top[:, 0] - top[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probabilities > 0, probabilities * np.log(probabilities), 0.0)
    entropy = 0.0 - terms.sum(axis=1)  # "0.0 -": a certain row has entropy 0.0, not -0.0
    entropy[np.isnan(probabilities).any(axis=1)] = np.nan
    return margin, entropy


def _missing(column: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    if column.dtype == np.float64:
        return np.asarray(np.isnan(column), dtype=bool)
    return np.asarray(np.equal(column, _NONE), dtype=bool)  # elementwise, in C


def _break(
    feature: str, rule: QualityRule, mask: npt.NDArray[np.bool_], column: npt.NDArray[Any]
) -> QualityBreak:
    positions = np.flatnonzero(mask)
    head = column[positions[:EXAMPLES_PER_GROUP]]
    examples = tuple(
        None if (v is None or (isinstance(v, float) and np.isnan(v))) else _plain(v) for v in head
    )
    return QualityBreak(feature, rule, positions, examples)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def data_quality(
    columns: Mapping[str, npt.NDArray[Any]], config: RuleConfig
) -> tuple[QualityBreak, ...]:
    """Missing required features, numbers far outside the reference range, unseen categories.

    A value is out of range when it lies more than ``out_of_range_tolerance``
    reference ranges (max - min) below the minimum or above the maximum.

    >>> cfg = RuleConfig(required=("age",), ranges={"age": (20.0, 60.0)},
    ...                  categories={"plan": frozenset({"free", "pro"})})
    >>> cols = {"age": np.array([30.0, np.nan, 150.0, 5.0]),
    ...         "plan": np.array(["free", "gold", None, "gold"], dtype=object)}
    >>> [(b.feature, b.rule, b.positions.tolist(), b.examples) for b in data_quality(cols, cfg)]
    [('age', 'missing_required', [1], (None,)), ('age', 'out_of_range', [2], (150.0,)), ('plan', 'unseen_category', [1, 3], ('gold', 'gold'))]
    """
    found: list[QualityBreak] = []
    for name, column in columns.items():
        if name.startswith("__"):
            continue
        missing = _missing(column)
        if name in config.required and missing.any():
            found.append(_break(name, "missing_required", missing, column))
        if name in config.ranges and column.dtype == np.float64:
            lo, hi = config.ranges[name]
            span = hi - lo if hi > lo else max(abs(hi), 1.0)
            slack = config.out_of_range_tolerance * span
            with np.errstate(invalid="ignore"):
                outside = (column < lo - slack) | (column > hi + slack)
            if outside.any():
                found.append(_break(name, "out_of_range", outside, column))
        if name in config.categories and column.dtype == object:
            known = config.categories[name]
            seen = set(column.tolist())  # one pass in C; usually every value is known
            seen.discard(None)
            if seen <= known:
                continue
            # a set lookup per value: no conversion of the column to fixed-width unicode
            unseen = np.fromiter(
                (v is not None and (v if type(v) is str else str(v)) not in known for v in column),
                dtype=bool,
                count=len(column),
            )
            if unseen.any():
                found.append(_break(name, "unseen_category", unseen, column))
    return tuple(found)


def evaluate(
    columns: Mapping[str, npt.NDArray[Any]],
    probabilities: Floats | None,
    config: RuleConfig,
    rng: np.random.Generator,
) -> Findings:
    """Every rule over one batch.

    ``probabilities`` is an ``(n, labels)`` matrix with NaN rows where a record
    gave none. Audit positions are drawn from the records no confidence rule
    flagged, each with probability ``audit_rate``; the draw covers every record,
    so a seeded ``rng`` picks the same records whatever the thresholds.
    """
    confidence = np.asarray(columns[CONFIDENCE], dtype=np.float64)
    n = len(confidence)
    if probabilities is not None and probabilities.shape[0] == n:
        margin, entropy = margin_and_entropy(probabilities)
    else:
        margin, entropy = np.full(n, np.nan), np.full(n, np.nan)
    # one code per record: the first rule it broke (0: none)
    code = np.zeros(n, dtype=np.int8)
    names = ("", "confidence", "margin", "entropy")
    with np.errstate(invalid="ignore"):
        if config.entropy_threshold is not None:
            code[entropy > config.entropy_threshold] = 3
        if config.margin_threshold is not None:
            code[margin < config.margin_threshold] = 2
        if config.confidence_threshold is not None:
            code[confidence < config.confidence_threshold] = 1
    flagged = np.flatnonzero(code)
    low = LowConfidence(
        positions=flagged,
        rules=tuple(names[c] for c in code[flagged]),
        confidence=confidence[flagged],
        margin=margin[flagged],
        entropy=entropy[flagged],
    )
    draw = rng.random(n)
    audit = np.flatnonzero((code == 0) & (draw < config.audit_rate))
    return Findings(low, audit, data_quality(columns, config), draw)
