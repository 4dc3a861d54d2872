"""Confidence-based performance estimation (CBPE): classification metrics without labels.

With calibrated probabilities ``p_r`` of each true class for every record
``r`` (see :mod:`monitors.performance.calibration`), the expected confusion
matrix of a batch is ``E[M_ij] = Σ_{r predicted i} p_rj`` — a sum over
records, so it adds up over blocks and a window's estimate costs O(blocks) [1]_.
Every metric is then computed from the expected matrix with the same formula
as from labels (a ratio of expected counts, which for thousands of records
is the expected ratio to well within its interval). The binary ROC AUC
comes from the expected masses of positives and negatives in each score bin.

**Interval.** The realized matrix of the same records varies around its
expectation because each record's true class is a draw from ``p_r``. The
block sums keep ``Q_ijl = Σ_{r predicted i} p_rj p_rl`` (its diagonal only
above 12 classes), which gives the delta-method variance of any metric of the
matrix (:mod:`monitors.performance._confusion`); the 95% interval is normal.
For accuracy this is exactly ``Σ_r p_r(1 − p_r) / n²`` with ``p_r`` the
probability that record ``r`` is right. The ROC AUC uses Hanley & McNeil's
variance at the expected numbers of positives and negatives (conservative).
The calibration itself was fitted on ``n_ref`` reference records and its
noise does not average out over the window: a metric read through it errs
by about what the metric of ``n_ref`` records varies, so the variance is
multiplied by ``1 + n / n_ref`` (a window as large as the reference has its
variance doubled). The interval then says where the *realized* value of this
window should fall.

**Assumption.** The calibration fitted on the reference still holds: the
probability of each true class given the model's scores has not changed
(no concept shift). Covariate shift — inputs moving to regions where the
model is more or less sure — is what CBPE follows; a change in the relation
between inputs and labels it cannot see (compare with labels:
:func:`monitors.performance.estimate.disagree`).

References
----------
.. [1] NannyML, "Confidence-based Performance Estimation (CBPE)",
   https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> score = rng.uniform(size=20_000)                   # a calibrated binary model
>>> truth = np.where(rng.uniform(size=score.size) < score, "yes", "no")
>>> predicted = np.where(score >= 0.5, "yes", "no")
>>> from monitors.performance.classification import fit_classification
>>> spec = fit_classification(["no", "yes"], labels=truth, predicted=predicted,
...                           probabilities=np.column_stack([1 - score, score]))
>>> later = rng.uniform(size=5000) ** 0.5              # inputs shift towards "yes"
>>> sums = cbpe_sums(spec, np.where(later >= 0.5, "yes", "no"),
...                  probabilities=np.column_stack([1 - later, later]))
>>> est = sums.estimate("accuracy")
>>> realized = np.mean((rng.uniform(size=5000) < later) == (later >= 0.5))
>>> round(est.value, 3), round(est.ci_low, 3), round(est.ci_high, 3), est.n
(0.755, 0.743, 0.768, 5000)
>>> round(float(realized), 3)
0.75
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from monitors.performance import _confusion
from monitors.performance._sums import Summable
from monitors.performance.classification import (
    CLASSIFICATION_METRICS,
    ClassificationSpec,
    decode,
    hanley_mcneil,
    roc_auc,
    score_bins,
)
from monitors.performance.estimate import Estimate, normal

FloatArray = npt.NDArray[np.float64]

FULL_COVARIANCE_MAX_CLASSES = 12
"""Above this many classes the blocks keep only the diagonal of ``Q`` (k² instead of k³ numbers)."""


@dataclass(frozen=True, eq=False)
class EstimatedClassification(Summable):
    """CBPE block sums.

    Attributes
    ----------
    positive : int or None
        Index of the positive class (binary), else None.
    reference_rows : int
        Records the calibration was fitted on (0: unknown, no inflation).
    confusion : ndarray, shape (k, k)
        Expected counts ``Σ p_rj`` by ``[predicted i, true j]``.
    cross : ndarray, shape (k, k, k) or (k, k)
        ``Q_ijl = Σ_{r predicted i} p_rj p_rl``, or its diagonal ``Σ p_rj²`` above 12 classes.
    positives, negatives : ndarray, shape (bins,)
        Binary: expected positive and negative mass per score bin. Empty otherwise.
    """

    _kind: ClassVar[str] = "estimated_classification"
    _shape_fields: ClassVar[tuple[str, ...]] = ("positive", "reference_rows")

    positive: int | None
    reference_rows: int
    confusion: FloatArray
    cross: FloatArray
    positives: FloatArray
    negatives: FloatArray

    @classmethod
    def empty(cls, spec: ClassificationSpec) -> EstimatedClassification:
        k = spec.k
        shape = (k, k, k) if k <= FULL_COVARIANCE_MAX_CLASSES else (k, k)
        return cls(
            positive=spec.positive_index,
            reference_rows=0 if spec.calibration is None else spec.calibration.rows,
            confusion=np.zeros((k, k)),
            cross=np.zeros(shape),
            positives=np.zeros(spec.n_score_bins),
            negatives=np.zeros(spec.n_score_bins),
        )

    @property
    def n(self) -> int:
        return round(float(self.confusion.sum()))

    @property
    def names(self) -> tuple[str, ...]:
        names = tuple(m for m in CLASSIFICATION_METRICS if m != "ece")
        return names if self.positive is not None else tuple(m for m in names if m != "roc_auc")

    def estimate(self, name: str) -> Estimate | None:
        """The expected metric with the 95% interval of its realized value."""
        m = self.confusion
        if name in _confusion.RATIO_METRICS:
            if not _confusion.defined(name, m, self.positive):
                return None
            val = float(_confusion.value(name, m, self.positive, _confusion.present_classes(m)))
            var = _confusion.expected_variance(name, m, self.cross, self.positive)
            return normal(val, math.sqrt(var * self._inflation), n=self.n, lower=0.0, upper=1.0)
        if name == "roc_auc" and self.positive is not None:
            auc = roc_auc(self.positives, self.negatives)
            if auc is None:
                return None
            est = hanley_mcneil(auc[0], auc[1], auc[2], n=self.n)
            se = (est.standard_error or 0.0) * math.sqrt(self._inflation)
            return normal(auc[0], se, n=self.n, lower=0.0, upper=1.0)
        return None

    @property
    def _inflation(self) -> float:
        """``1 + n / n_ref``: the calibration's own noise (see the module docstring)."""
        return 1.0 + (self.n / self.reference_rows if self.reference_rows > 0 else 0.0)


def _expected_confusion(
    pred: npt.NDArray[np.intp], probs: npt.NDArray[np.float64], k: int, *, square: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The expected confusion matrix (rows: predicted class) from the calibrated
    probabilities, and the sums of their products (per pair of classes with ``square``)."""
    confusion = np.zeros((k, k))
    np.add.at(confusion, pred, probs)
    if square:
        cross = np.zeros((k, k, k))
        np.add.at(cross, pred, probs[:, :, None] * probs[:, None, :])
    else:
        cross = np.zeros((k, k))
        np.add.at(cross, pred, probs * probs)
    return confusion, cross


def _score_bin_sums(
    spec: ClassificationSpec, bins: npt.NDArray[np.intp], p_pos: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Expected positives and negatives per score bin (a binary model's)."""
    positives = np.bincount(bins, weights=p_pos, minlength=spec.n_score_bins).astype(np.float64)
    negatives = np.bincount(bins, weights=1.0 - p_pos, minlength=spec.n_score_bins)
    return positives, negatives.astype(np.float64)


def cbpe_sums(
    spec: ClassificationSpec,
    predicted: Any,
    *,
    probabilities: Any = None,
    confidence: Any = None,
) -> EstimatedClassification:
    """CBPE sums of a batch of predictions (no labels needed).

    Parameters
    ----------
    spec : ClassificationSpec
        A calibrated spec (:func:`fit_classification` with the reference's labels).
    predicted : array-like of str
        The predicted classes; rows whose class is not one of the spec's are skipped.
    probabilities : array-like, shape (rows, classes), optional
        The model's probabilities (NaN where a record has none).
    confidence : array-like, shape (rows,), optional
        The model's probability of its predicted class.

    Returns
    -------
    EstimatedClassification
        Rows without the scores the calibration needs are skipped (``n`` says
        how many were used).
    """
    if spec.calibration is None:
        raise ValueError(
            "this model's reference has no calibration: CBPE needs a reference with "
            "true labels and the model's confidence or probabilities"
        )
    inputs = decode(spec, predicted, probabilities, confidence)
    valid = inputs.predicted >= 0
    used, probs = spec.calibration.probabilities(
        inputs.predicted,
        inputs.positive_score,
        inputs.probabilities,
        inputs.confidence,
        spec.positive_index,
    )
    # `probs` rows correspond to `used`; drop the rows with an unknown predicted class
    keep = valid[used]
    probs = probs[keep]
    rows = used & valid
    pred = inputs.predicted[rows]
    out = EstimatedClassification.empty(spec)
    confusion, cross = _expected_confusion(pred, probs, spec.k, square=out.cross.ndim == 3)
    positives, negatives = out.positives, out.negatives
    if spec.binary:
        assert inputs.positive_score is not None and spec.positive_index is not None
        bins = score_bins(spec, inputs.positive_score[rows])
        positives, negatives = _score_bin_sums(spec, bins, probs[:, spec.positive_index])
    return EstimatedClassification(
        positive=spec.positive_index,
        reference_rows=out.reference_rows,
        confusion=confusion,
        cross=cross,
        positives=positives.astype(np.float64),
        negatives=negatives.astype(np.float64),
    )
