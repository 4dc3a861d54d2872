"""Classification performance from labels (realized), and the spec every estimate shares.

A :class:`ClassificationSpec` is fitted once per model and reference: the
classes, the positive class of a binary model, the score bins of the binary
ROC AUC, and (when the reference has labels and scores) the CBPE calibration.

The realized sums of a batch of labelled records are a :class:`LabelledClassification`:

* the ``k × k`` confusion counts, indexed ``[predicted, true]``;
* binary models: histograms of the positive-class score of the truly positive
  and truly negative records, on the spec's score bins (the ROC AUC is the
  Mann–Whitney statistic of the two, ties within a bin counting one half; with
  bins at every distinct score it is exactly scikit-learn's);
* ten equal-width bins of the predicted class's confidence, with the count,
  the sum of confidences and the number correct of each (for the ECE).

Intervals (95%), treating the labelled records as a sample of the model's
traffic (labels missing at random): Wilson for accuracy and for the binary
precision and recall; the delta method on the multinomial confusion matrix
for F1 and the macro averages; Hanley & McNeil's variance for the ROC AUC [1]_.
The expected calibration error has no interval (it is biased upward in small
samples, and its sampling distribution is not normal).

References
----------
.. [1] Hanley & McNeil, "The meaning and use of the area under a receiver
   operating characteristic (ROC) curve", Radiology 143(1), 1982.
.. [2] Naeini, Cooper & Hauskrecht, "Obtaining well calibrated probabilities
   using Bayesian binning", AAAI 2015 (the ECE).

Examples
--------
>>> import numpy as np
>>> spec = fit_classification(["no", "yes"])
>>> sums = labelled_classification(
...     spec,
...     labels=["yes", "no", "yes", "no", "yes"],
...     predicted=["yes", "no", "no", "no", "yes"],
...     confidence=np.array([0.9, 0.8, 0.6, 0.7, 0.95]),
... )
>>> sums.confusion.tolist()  # [predicted, true]
[[2.0, 1.0], [0.0, 2.0]]
>>> est = sums.estimate("accuracy")
>>> round(est.value, 2), est.n
(0.8, 5)
>>> round(sums.estimate("recall").value, 3)  # of "yes"
0.667
>>> round(sums.estimate("roc_auc").value, 3)
1.0
>>> window = sums + sums  # block sums add up
>>> window.estimate("accuracy").n
10
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from monitors.performance import _confusion
from monitors.performance._sums import Summable
from monitors.performance.calibration import Calibration
from monitors.performance.estimate import Estimate, normal, wilson

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "ece")
SCORE_BINS = 200
"""Bins of the positive-class score for the binary ROC AUC (at reference quantiles)."""
ECE_BINS = 10
MIN_CALIBRATION_ROWS = 20


@dataclass(frozen=True)
class ClassificationSpec:
    """What every classification sums object of one model and reference is made with.

    Attributes
    ----------
    classes : tuple of str
        The model's labels, in its order (the columns of ``probabilities``).
    positive : str or None
        The positive class of a binary model; None for multiclass.
    score_edges : tuple of float
        Interior edges of the positive-class score bins (binary); empty otherwise.
    calibration : Calibration or None
        CBPE's calibration, when the reference allowed one.
    """

    classes: tuple[str, ...]
    positive: str | None
    score_edges: tuple[float, ...]
    calibration: Calibration | None = None

    def __post_init__(self) -> None:
        if len(self.classes) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {list(self.classes)}")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be distinct, got {list(self.classes)}")
        if self.binary and self.positive not in self.classes:
            raise ValueError(f"positive class {self.positive!r} is not one of {list(self.classes)}")
        if not self.binary and self.positive is not None:
            raise ValueError("a positive class is only for binary models")

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    @property
    def k(self) -> int:
        return len(self.classes)

    @property
    def positive_index(self) -> int | None:
        return None if self.positive is None else self.classes.index(self.positive)

    @property
    def calibrated(self) -> bool:
        """Whether CBPE can estimate with this spec."""
        return self.calibration is not None

    @property
    def n_score_bins(self) -> int:
        return len(self.score_edges) + 1 if self.binary else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "classes": list(self.classes),
            "positive": self.positive,
            "score_edges": list(self.score_edges),
            "calibration": None if self.calibration is None else self.calibration.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClassificationSpec:
        cal = data.get("calibration")
        return cls(
            classes=tuple(data["classes"]),
            positive=data.get("positive"),
            score_edges=tuple(float(v) for v in data["score_edges"]),
            calibration=None if cal is None else Calibration.from_json(cal),
        )


@dataclass(frozen=True)
class Inputs:
    """A batch's predictions decoded against a spec."""

    predicted: IntArray  # class index, -1 when not one of the classes
    positive_score: FloatArray | None  # binary: P(positive) as the model scored it, NaN if none
    probabilities: FloatArray | None  # (n, k) or None
    confidence: FloatArray | None  # (n,) or None
    predicted_confidence: FloatArray  # the predicted class's score, NaN if none


def class_codes(spec: ClassificationSpec, values: Any) -> IntArray:
    """Index of each label in ``spec.classes``; -1 for None or an unknown label."""
    array = np.asarray(values, dtype=object).reshape(-1)
    lookup = {c: i for i, c in enumerate(spec.classes)}
    return np.fromiter(
        (
            lookup.get(v if isinstance(v, str) else str(v) if v is not None else "", -1)
            for v in array
        ),
        dtype=np.intp,
        count=array.size,
    )


def decode(
    spec: ClassificationSpec,
    predicted: Any,
    probabilities: Any = None,
    confidence: Any = None,
) -> Inputs:
    """Check shapes and decode a batch's predictions and scores."""
    pred = class_codes(spec, predicted)
    n = pred.size
    probs = None
    if probabilities is not None:
        probs = np.asarray(probabilities, dtype=np.float64)
        if probs.shape != (n, spec.k):
            raise ValueError(
                f"probabilities must have shape (rows, classes) = ({n}, {spec.k}), got {probs.shape}"
            )
    conf = None
    if confidence is not None:
        conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
        if conf.size != n:
            raise ValueError(f"confidence has {conf.size} values for {n} predictions")
    valid = pred >= 0
    safe = np.where(valid, pred, 0)
    pred_conf = np.full(n, np.nan)
    if conf is not None:
        pred_conf = np.where(valid, conf, np.nan)
    if probs is not None:
        from_probs = probs[np.arange(n), safe]
        pred_conf = np.where(valid & ~np.isnan(from_probs), from_probs, pred_conf)
    positive_score = None
    pos = spec.positive_index
    if pos is not None:
        positive_score = np.full(n, np.nan)
        if conf is not None:
            positive_score = np.where(valid, np.where(pred == pos, conf, 1.0 - conf), np.nan)
        if probs is not None:
            positive_score = np.where(np.isnan(probs[:, pos]), positive_score, probs[:, pos])
    return Inputs(pred, positive_score, probs, conf, pred_conf)


def score_bins(spec: ClassificationSpec, positive_score: FloatArray) -> IntArray:
    """Bin of each positive-class score on the spec's edges."""
    return np.asarray(
        np.searchsorted(np.asarray(spec.score_edges), positive_score, side="right"), dtype=np.intp
    )


def fit_classification(
    classes: Sequence[str],
    *,
    positive: str | None = None,
    labels: Any = None,
    predicted: Any = None,
    probabilities: Any = None,
    confidence: Any = None,
) -> ClassificationSpec:
    """Fit a model's classification spec on its reference.

    Parameters
    ----------
    classes : sequence of str
        The model's labels, in its order.
    positive : str, optional
        The positive class of a binary model (default: the second class).
    labels, predicted : array-like of str, optional
        The reference's true labels and the model's predictions.
    probabilities : array-like, shape (rows, classes), optional
        The model's probabilities, NaN where a record has none.
    confidence : array-like, shape (rows,), optional
        The model's probability of its predicted class, NaN where missing.

    Returns
    -------
    ClassificationSpec
        Calibrated for CBPE when labels, predictions and scores allow it (at
        least 20 usable reference rows).
    """
    classes = tuple(str(c) for c in classes)
    if len(classes) == 2 and positive is None:
        positive = classes[1]
    base = ClassificationSpec(classes=classes, positive=positive, score_edges=())
    if predicted is None:
        edges = _uniform_edges() if base.binary else ()
        return ClassificationSpec(classes, positive, edges)
    inputs = decode(base, predicted, probabilities, confidence)
    edges = ()
    if base.binary:
        assert inputs.positive_score is not None
        edges = _quantile_edges(inputs.positive_score[~np.isnan(inputs.positive_score)])
    spec = ClassificationSpec(classes, positive, edges)
    if labels is None:
        return spec
    truth = class_codes(spec, labels)
    if truth.size != inputs.predicted.size:
        raise ValueError(f"{truth.size} labels for {inputs.predicted.size} predictions")
    calibration = _calibration(spec, inputs, truth)
    return ClassificationSpec(classes, positive, edges, calibration)


def _calibration(spec: ClassificationSpec, inputs: Inputs, truth: IntArray) -> Calibration | None:
    """CBPE's calibration from the reference's scores and true labels: of the positive
    score (binary), else of the probabilities, else of the confidence; ``None`` with fewer
    than MIN_CALIBRATION_ROWS usable rows."""
    ok = (truth >= 0) & (inputs.predicted >= 0)
    if spec.binary:
        assert inputs.positive_score is not None and spec.positive_index is not None
        use = ok & ~np.isnan(inputs.positive_score)
        if use.sum() >= MIN_CALIBRATION_ROWS:
            return Calibration.fit_binary(
                inputs.positive_score[use], (truth[use] == spec.positive_index).astype(np.float64)
            )
    elif inputs.probabilities is not None and (
        (use := ok & ~np.isnan(inputs.probabilities).any(axis=1)).sum() >= MIN_CALIBRATION_ROWS
    ):
        return Calibration.fit_probabilities(inputs.probabilities[use], truth[use])
    elif inputs.confidence is not None:
        use = ok & ~np.isnan(inputs.confidence)
        if use.sum() >= MIN_CALIBRATION_ROWS:
            return Calibration.fit_confidence(
                inputs.confidence[use], inputs.predicted[use], truth[use], spec.k
            )
    return None


def _uniform_edges() -> tuple[float, ...]:
    return tuple(float(v) for v in np.linspace(0.0, 1.0, SCORE_BINS + 1)[1:-1])


def _quantile_edges(scores: FloatArray) -> tuple[float, ...]:
    if scores.size < 2 * SCORE_BINS:
        return _uniform_edges()
    edges = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, SCORE_BINS + 1)[1:-1]))
    return tuple(float(v) for v in edges)


def roc_auc(positives: FloatArray, negatives: FloatArray) -> tuple[float, float, float] | None:
    """Mann–Whitney AUC of two score histograms (ties count one half), with ``P`` and ``N``."""
    p_total, n_total = float(positives.sum()), float(negatives.sum())
    if p_total <= 0 or n_total <= 0:
        return None
    below = np.cumsum(negatives) - negatives  # negatives in lower bins
    auc = float((positives * (below + 0.5 * negatives)).sum() / (p_total * n_total))
    return auc, p_total, n_total


def hanley_mcneil(auc: float, positives: float, negatives: float, n: int) -> Estimate:
    """Normal interval of an AUC with Hanley & McNeil's variance."""
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    var = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    return normal(auc, math.sqrt(max(var, 0.0)), n=n, lower=0.0, upper=1.0)


@dataclass(frozen=True, eq=False)
class LabelledClassification(Summable):
    """Realized sums of labelled records (see the module docstring).

    Attributes
    ----------
    positive : int or None
        Index of the positive class (binary), else None.
    confusion : ndarray, shape (k, k)
        Counts, ``[predicted, true]``.
    positives, negatives : ndarray, shape (bins,)
        Binary: histograms of the positive-class score of true positives and
        negatives. Empty for multiclass.
    calibration_bins : ndarray, shape (3, 10)
        Per confidence bin: records, sum of confidence, records correct.
    """

    _kind: ClassVar[str] = "labelled_classification"
    _shape_fields: ClassVar[tuple[str, ...]] = ("positive",)

    positive: int | None
    confusion: FloatArray
    positives: FloatArray
    negatives: FloatArray
    calibration_bins: FloatArray

    @classmethod
    def empty(cls, spec: ClassificationSpec) -> LabelledClassification:
        return cls(
            positive=spec.positive_index,
            confusion=np.zeros((spec.k, spec.k)),
            positives=np.zeros(spec.n_score_bins),
            negatives=np.zeros(spec.n_score_bins),
            calibration_bins=np.zeros((3, ECE_BINS)),
        )

    @property
    def n(self) -> int:
        return round(float(self.confusion.sum()))

    @property
    def names(self) -> tuple[str, ...]:
        if self.positive is None:
            return tuple(m for m in CLASSIFICATION_METRICS if m != "roc_auc")
        return CLASSIFICATION_METRICS

    def estimate(self, name: str) -> Estimate | None:
        """The metric with its 95% interval; None when it cannot be computed."""
        m = self.confusion
        n = self.n
        if name in _confusion.RATIO_METRICS:
            if not _confusion.defined(name, m, self.positive):
                return None
            pos = self.positive
            if name == "accuracy":
                return wilson(float(np.trace(m)), float(m.sum()))
            if pos is not None and name == "precision":
                return wilson(float(m[pos, pos]), float(m[pos].sum()))
            if pos is not None and name == "recall":
                return wilson(float(m[pos, pos]), float(m[:, pos].sum()))
            val = float(_confusion.value(name, m, pos, _confusion.present_classes(m)))
            var = _confusion.multinomial_variance(name, m, pos)
            return normal(val, math.sqrt(var), n=n, lower=0.0, upper=1.0)
        if name == "roc_auc":
            auc = roc_auc(self.positives, self.negatives) if self.positive is not None else None
            if auc is None:
                return None
            return hanley_mcneil(auc[0], auc[1], auc[2], n=round(auc[1] + auc[2]))
        if name == "ece":
            count, conf, correct = self.calibration_bins
            total = float(count.sum())
            if total <= 0:
                return None
            ece = float(np.abs(correct - conf).sum() / total)
            return Estimate(value=ece, ci_low=None, ci_high=None, n=round(total))
        return None


def labelled_classification(
    spec: ClassificationSpec,
    labels: Any,
    predicted: Any,
    *,
    probabilities: Any = None,
    confidence: Any = None,
) -> LabelledClassification:
    """Realized sums of a batch of labelled records (records with an unknown label are skipped)."""
    inputs = decode(spec, predicted, probabilities, confidence)
    truth = class_codes(spec, labels)
    if truth.size != inputs.predicted.size:
        raise ValueError(f"{truth.size} labels for {inputs.predicted.size} predictions")
    ok = (truth >= 0) & (inputs.predicted >= 0)
    t, p = truth[ok], inputs.predicted[ok]
    confusion = np.zeros((spec.k, spec.k))
    np.add.at(confusion, (p, t), 1.0)
    positives = np.zeros(spec.n_score_bins)
    negatives = np.zeros(spec.n_score_bins)
    if spec.binary:
        assert inputs.positive_score is not None
        score = inputs.positive_score[ok]
        scored = ~np.isnan(score)
        bins = score_bins(spec, score[scored])
        is_pos = t[scored] == spec.positive_index
        positives = np.bincount(bins[is_pos], minlength=spec.n_score_bins).astype(np.float64)
        negatives = np.bincount(bins[~is_pos], minlength=spec.n_score_bins).astype(np.float64)
    conf = inputs.predicted_confidence[ok]
    scored = ~np.isnan(conf)
    bins = np.clip((conf[scored] * ECE_BINS).astype(np.intp), 0, ECE_BINS - 1)
    cal = np.zeros((3, ECE_BINS))
    cal[0] = np.bincount(bins, minlength=ECE_BINS)
    cal[1] = np.bincount(bins, weights=conf[scored], minlength=ECE_BINS)
    cal[2] = np.bincount(bins, weights=(p == t)[scored].astype(np.float64), minlength=ECE_BINS)
    return LabelledClassification(
        positive=spec.positive_index,
        confusion=confusion,
        positives=positives,
        negatives=negatives,
        calibration_bins=cal,
    )
