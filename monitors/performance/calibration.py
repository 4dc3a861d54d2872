"""Calibration of a classifier's scores on its reference: isotonic regression.

CBPE needs probabilities that mean what they say: of the records scored 0.8,
80% are truly positive. Models are often not calibrated, so the scores are
mapped through a monotone function fitted on the reference's labels —
isotonic regression (pool adjacent violators, scikit-learn's
``IsotonicRegression``), the least-squares non-decreasing step function [1]_.
It is stored as its breakpoints and applied by linear interpolation between
them, clipped at both ends, exactly as scikit-learn predicts.

* **Binary**: one curve, the positive class's score → P(positive).
* **Multiclass with probabilities**: one curve per class (one-vs-rest), then
  each row renormalised to sum to 1, as NannyML's CBPE does.
* **Multiclass with confidence only** (the probability of the predicted class):
  one curve, confidence → P(correct); the rest of the row's mass goes to the
  other classes in the proportions of the reference's errors of that
  predicted class (with a half-count prior, so unseen errors are possible).

References
----------
.. [1] Zadrozny & Elkan, "Transforming classifier scores into accurate
   multiclass probability estimates", KDD 2002.

Examples
--------
>>> import numpy as np
>>> curve = Isotonic.fit(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 1.0, 0.0, 1.0]))
>>> curve(np.array([0.1, 0.25, 0.4])).round(2).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
CalibrationMode = Literal["binary", "probabilities", "confidence"]

SHARE_PRIOR = 0.5
"""Half a count added to every off-diagonal cell when sharing out a record's error mass."""


@dataclass(frozen=True)
class Isotonic:
    """A fitted non-decreasing calibration curve, as breakpoints.

    Attributes
    ----------
    x, y : tuple of float
        Breakpoints (scores and calibrated probabilities), ``x`` increasing.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]

    @classmethod
    def fit(cls, scores: FloatArray, outcomes: FloatArray) -> Isotonic:
        """Fit P(outcome | score) by isotonic regression (scores and 0/1 outcomes)."""
        from sklearn.isotonic import IsotonicRegression

        if scores.size == 0:
            raise ValueError("cannot calibrate on no records")
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, outcomes)
        return cls(
            x=tuple(float(v) for v in model.X_thresholds_),
            y=tuple(float(v) for v in model.y_thresholds_),
        )

    def __call__(self, scores: FloatArray) -> FloatArray:
        return np.asarray(np.interp(scores, self.x, self.y), dtype=np.float64)


@dataclass(frozen=True)
class Calibration:
    """How CBPE turns a record's scores into probabilities of each true class.

    Attributes
    ----------
    mode : {"binary", "probabilities", "confidence"}
        See the module docstring.
    curves : tuple of Isotonic
        One (binary: the positive class; confidence: P(correct)) or one per class.
    shares : tuple of tuple of float, or None
        Confidence mode: row ``i`` gives how a record predicted ``i`` spreads its
        error mass over the other true classes.
    rows : int
        Reference records the curves were fitted on (their noise is part of
        CBPE's interval).
    """

    mode: CalibrationMode
    curves: tuple[Isotonic, ...]
    shares: tuple[tuple[float, ...], ...] | None = None
    rows: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "curves": [{"x": list(c.x), "y": list(c.y)} for c in self.curves],
            "shares": None if self.shares is None else [list(r) for r in self.shares],
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        shares = data.get("shares")
        return cls(
            mode=data["mode"],
            curves=tuple(
                Isotonic(x=tuple(map(float, c["x"])), y=tuple(map(float, c["y"])))
                for c in data["curves"]
            ),
            shares=None if shares is None else tuple(tuple(map(float, r)) for r in shares),
            rows=int(data.get("rows", 0)),
        )

    @classmethod
    def fit_binary(cls, positive_score: FloatArray, is_positive: FloatArray) -> Calibration:
        return cls(
            mode="binary",
            curves=(Isotonic.fit(positive_score, is_positive),),
            rows=int(positive_score.size),
        )

    @classmethod
    def fit_probabilities(cls, probabilities: FloatArray, true_idx: IntArray) -> Calibration:
        k = probabilities.shape[1]
        return cls(
            mode="probabilities",
            curves=tuple(
                Isotonic.fit(probabilities[:, j], (true_idx == j).astype(np.float64))
                for j in range(k)
            ),
            rows=int(true_idx.size),
        )

    @classmethod
    def fit_confidence(
        cls, confidence: FloatArray, predicted_idx: IntArray, true_idx: IntArray, k: int
    ) -> Calibration:
        correct = (predicted_idx == true_idx).astype(np.float64)
        errors = np.zeros((k, k))
        np.add.at(errors, (predicted_idx, true_idx), 1.0)
        errors[np.diag_indices(k)] = 0.0
        errors += SHARE_PRIOR
        errors[np.diag_indices(k)] = 0.0
        shares = errors / errors.sum(axis=1, keepdims=True)
        return cls(
            mode="confidence",
            curves=(Isotonic.fit(confidence, correct),),
            shares=tuple(tuple(float(v) for v in row) for row in shares),
            rows=int(true_idx.size),
        )

    def probabilities(
        self,
        predicted_idx: IntArray,
        positive_score: FloatArray | None,
        probabilities: FloatArray | None,
        confidence: FloatArray | None,
        positive: int | None,
    ) -> tuple[npt.NDArray[np.bool_], FloatArray]:
        """Calibrated probabilities of each true class, ``(rows used, (m, k) matrix)``.

        A row is used when it has what the mode needs (binary: a positive-class
        score; probabilities: a full row; confidence: the confidence).
        """
        n = predicted_idx.shape[0]
        if self.mode == "binary":
            assert positive_score is not None and positive is not None
            used = ~np.isnan(positive_score)
            p_pos = np.clip(self.curves[0](positive_score[used]), 0.0, 1.0)
            out = np.empty((int(used.sum()), 2))
            out[:, positive] = p_pos
            out[:, 1 - positive] = 1.0 - p_pos
            return used, out
        if self.mode == "probabilities":
            if probabilities is None:
                return np.zeros(n, dtype=bool), np.empty((0, len(self.curves)))
            used = np.asarray(~np.isnan(probabilities).any(axis=1))
            raw = probabilities[used]
            cal = np.column_stack([c(raw[:, j]) for j, c in enumerate(self.curves)])
            total = cal.sum(axis=1, keepdims=True)
            raw_total = raw.sum(axis=1, keepdims=True)
            fallback = np.divide(
                raw, raw_total, out=np.full_like(raw, 1.0 / raw.shape[1]), where=raw_total > 0
            )
            cal = np.divide(cal, total, out=fallback, where=total > 0)
            return used, np.asarray(cal, dtype=np.float64)
        # confidence mode
        assert self.shares is not None
        if confidence is None:
            return np.zeros(n, dtype=bool), np.empty((0, len(self.shares)))
        used = ~np.isnan(confidence)
        pred = predicted_idx[used]
        p_correct = np.clip(self.curves[0](confidence[used]), 0.0, 1.0)
        shares = np.asarray(self.shares)
        out = (1.0 - p_correct)[:, None] * shares[pred]
        out[np.arange(pred.size), pred] = p_correct
        return used, np.asarray(out, dtype=np.float64)
