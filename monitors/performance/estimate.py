"""The result type of every performance estimate, and the intervals they share.

An :class:`Estimate` is a point value with a 95% interval and the number of
records behind it (labels for the realized and audited estimates, rows for the
label-free ones). The intervals used across the package:

* :func:`wilson` — the Wilson score interval for a proportion, which keeps its
  coverage near 0 and 1 and for small samples, where the normal ("Wald")
  interval does not [1]_;
* :func:`normal` — value ± z·se, for means of many records and for the delta
  method;
* :func:`disagree` — whether two independent estimates of the same quantity
  differ by more than their uncertainty.

References
----------
.. [1] Brown, Cai & DasGupta, "Interval estimation for a binomial proportion",
   Statistical Science 16(2), 2001.

Examples
--------
>>> est = wilson(90, 100)
>>> round(est.value, 2), round(est.ci_low, 3), round(est.ci_high, 3), est.n
(0.9, 0.826, 0.945, 100)
>>> disagree(wilson(90, 100), normal(0.97, 0.004, n=5000))
True
>>> disagree(wilson(95, 100), normal(0.97, 0.004, n=5000))
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Z95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95% interval."""


@dataclass(frozen=True)
class Estimate:
    """A performance metric's value with its 95% interval.

    Attributes
    ----------
    value : float
        The point estimate.
    ci_low, ci_high : float or None
        The 95% interval; None only for metrics without one (the realized ECE).
    n : int
        Records behind it: labels used (realized, audited) or rows (estimated).
    """

    value: float
    ci_low: float | None
    ci_high: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of API.md: ``{"value", "ci_low", "ci_high", "n"}``."""
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}

    @property
    def standard_error(self) -> float | None:
        """The standard error read back from the interval's half-width."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / (2 * Z95)


def wilson(successes: float, trials: float, *, n: int | None = None) -> Estimate | None:
    """Wilson score interval for ``successes / trials`` (None when ``trials`` is 0).

    ``trials`` may be fractional (an effective sample size); ``n`` is what the
    estimate reports as its number of records (default ``round(trials)``).
    """
    if trials <= 0:
        return None
    p = min(max(successes / trials, 0.0), 1.0)
    z2 = Z95 * Z95
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return Estimate(
        value=p,
        ci_low=max(0.0, centre - half),
        ci_high=min(1.0, centre + half),
        n=round(trials) if n is None else n,
    )


def wilson_effective(
    p: float, variance: float, *, n: int, fallback_trials: float
) -> Estimate | None:
    """Wilson interval for a proportion ``p`` estimated with ``variance`` under a design.

    The design's effective sample size ``p(1-p)/variance`` [2]_ stands for the
    trials; where it is undefined (``p`` at 0 or 1, or no variance)
    ``fallback_trials`` is used.

    References
    ----------
    .. [2] Korn & Graubard, "Confidence intervals for proportions with small
       expected number of positive counts estimated from survey data",
       Survey Methodology 24(2), 1998.
    """
    trials = p * (1 - p) / variance if variance > 0 and 0 < p < 1 else fallback_trials
    if trials <= 0:
        return None
    est = wilson(p * trials, trials, n=n)
    assert est is not None
    return Estimate(
        value=p, ci_low=min(est.ci_low or 0.0, p), ci_high=max(est.ci_high or 1.0, p), n=n
    )


def normal(
    value: float,
    standard_error: float,
    *,
    n: int,
    lower: float | None = 0.0,
    upper: float | None = None,
) -> Estimate:
    """``value ± z·se``, clipped to ``[lower, upper]`` where given."""
    half = Z95 * max(standard_error, 0.0)
    low, high = value - half, value + half
    if lower is not None:
        low = max(low, lower)
    if upper is not None:
        high = min(high, upper)
    return Estimate(value=value, ci_low=low, ci_high=high, n=n)


def disagree(labelled: Estimate | None, estimated: Estimate | None) -> bool:
    """Whether a label-based and a label-free estimate differ beyond their uncertainty.

    A two-sided z-test at 5% of their difference, with each standard error read
    back from its 95% half-width (the two are independent: one comes from
    labels, the other from the model's scores). False when either is missing
    or has no interval. Used for ``concept_shift_suspected``: CBPE and DLE
    assume the relation between inputs and labels of the reference still
    holds, and labels show when it does not.
    """
    if labelled is None or estimated is None:
        return False
    se_a, se_b = labelled.standard_error, estimated.standard_error
    if se_a is None or se_b is None:
        return False
    spread = math.hypot(se_a, se_b)
    difference = abs(labelled.value - estimated.value)
    if spread == 0:
        return difference > 0
    return difference > Z95 * spread
