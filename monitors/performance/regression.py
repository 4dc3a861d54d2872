"""Regression performance from labels (realized): MAE and RMSE as block sums.

The sums of a batch are ``n``, ``Σe``, ``Σ|e|``, ``Σe²`` and ``Σe⁴`` of its
errors ``e = prediction − truth``. Intervals (95%, normal) treat the labelled
records as a sample of the model's traffic: the MAE's from the standard
deviation of ``|e|``; the RMSE's by the delta method from that of ``e²``
(``se(RMSE) = se(MSE) / 2·RMSE``).

Examples
--------
>>> import numpy as np
>>> sums = labelled_regression(y_true=np.array([1.0, 2.0, 3.0, 4.0]),
...                            y_pred=np.array([1.5, 2.0, 2.0, 4.0]))
>>> sums.estimate("mae").value
0.375
>>> round(sums.estimate("rmse").value, 4)
0.559
>>> (sums + sums).estimate("mae").n
8
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from monitors.performance._sums import Summable
from monitors.performance.estimate import Estimate, normal

FloatArray = npt.NDArray[np.float64]

REGRESSION_METRICS = ("mae", "rmse")


def errors(y_true: Any, y_pred: Any) -> FloatArray:
    """``prediction − truth`` of the rows where both are finite numbers."""
    truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if truth.size != pred.size:
        raise ValueError(f"{truth.size} true values for {pred.size} predictions")
    e = pred - truth
    return np.asarray(e[np.isfinite(e)], dtype=np.float64)


def mean_interval(total: float, total_sq: float, n: float) -> tuple[float, float]:
    """Mean and standard error of a mean from ``Σx``, ``Σx²`` and ``n``."""
    mean = total / n
    if n < 2:
        return mean, math.inf
    var = max((total_sq - n * mean * mean) / (n - 1), 0.0)
    return mean, math.sqrt(var / n)


def rmse_estimate(mse: float, se_mse: float, n: int) -> Estimate:
    """RMSE with the delta-method interval of ``sqrt`` at the MSE."""
    rmse = math.sqrt(max(mse, 0.0))
    if rmse == 0:
        return normal(0.0, 0.0, n=n)
    return normal(rmse, se_mse / (2 * rmse), n=n)


class RegressionCounts:
    """What both regression sums answer alike: records and metric names."""

    n_records: float

    @property
    def n(self) -> int:
        return round(self.n_records)

    @property
    def names(self) -> tuple[str, ...]:
        return REGRESSION_METRICS


@dataclass(frozen=True, eq=False)
class LabelledRegression(RegressionCounts, Summable):
    """Realized regression sums: ``n``, ``Σe``, ``Σ|e|``, ``Σe²``, ``Σe⁴``."""

    _kind: ClassVar[str] = "labelled_regression"

    n_records: float
    sum_error: float
    sum_abs: float
    sum_sq: float
    sum_quad: float

    @classmethod
    def empty(cls) -> LabelledRegression:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0)

    def estimate(self, name: str) -> Estimate | None:
        """MAE or RMSE with its 95% interval; None without labels."""
        n = self.n_records
        if n <= 0:
            return None
        if name == "mae":
            mean, se = mean_interval(self.sum_abs, self.sum_sq, n)
            return normal(mean, se, n=self.n)
        if name == "rmse":
            mse, se = mean_interval(self.sum_sq, self.sum_quad, n)
            return rmse_estimate(mse, se, self.n)
        return None


def labelled_regression(y_true: Any, y_pred: Any) -> LabelledRegression:
    """Realized sums of a batch of labelled records (rows with a missing value are skipped)."""
    e = errors(y_true, y_pred)
    sq = e * e
    return LabelledRegression(
        n_records=float(e.size),
        sum_error=float(e.sum()),
        sum_abs=float(np.abs(e).sum()),
        sum_sq=float(sq.sum()),
        sum_quad=float((sq * sq).sum()),
    )
