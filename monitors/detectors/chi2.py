"""Pearson's chi-square test of homogeneity on counts.

The reference and window counts form a 2 × k contingency table (columns that
are empty on both sides are dropped); the statistic is
``Σ (O − E)² / E`` with ``k − 1`` degrees of freedom, no continuity
correction. It is the default test for categorical features: with many
categories and small windows some expected counts are small, and Pearson's
statistic keeps its chi-square distribution there better than the G statistic
does. The effect size is the Jensen–Shannon distance.

References
----------
.. [1] Agresti, "Categorical Data Analysis", 3rd ed., Wiley, 2013, §3.2.

Examples
--------
>>> result = chi2([500, 300, 200], [400, 300, 300])
>>> round(result.statistic, 2), f"{result.p_value:.1e}", round(result.effect, 3), result.drifted
(31.11, '1.8e-07', 0.106, True)
>>> result = chi2([5000, 3000, 2000], [4500, 3000, 2500])
>>> bool(result.p_value < 1e-10), round(result.effect, 3)
(True, 0.054)
>>> result.drifted  # significant, but under the 0.1 floor on the effect
False
"""

from __future__ import annotations

import numpy.typing as npt
from scipy import stats

from monitors.detectors import _contingency
from monitors.detectors.base import (
    DEFAULT_ALPHA,
    Detector,
    DetectorResult,
    Edges,
    FloatArray,
    register,
)
from monitors.detectors.jensen_shannon import THRESHOLD
from monitors.detectors.jensen_shannon import distance as js_distance


def _test(reference: FloatArray, window: FloatArray, edges: Edges) -> tuple[float, float]:
    del edges
    r, w, er, ew, dof = _contingency.table(reference, window)
    if dof < 1:
        return 0.0, 1.0
    statistic = float((((r - er) ** 2) / er).sum() + (((w - ew) ** 2) / ew).sum())
    return statistic, float(stats.chi2.sf(statistic, dof))


DETECTOR = register(
    Detector(
        name="chi2",
        kinds=frozenset({"numerical", "categorical"}),
        threshold=THRESHOLD,
        effect_name="jensen_shannon",
        effect=js_distance,
        test=_test,
        has_p_value=True,
        needs_edges=False,
    )
)


def chi2(
    reference: npt.ArrayLike,
    window: npt.ArrayLike,
    edges: npt.ArrayLike | None = None,
    *,
    threshold: float = THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
) -> DetectorResult:
    """Chi-square test of a window against a reference, with Jensen–Shannon as effect.

    Parameters
    ----------
    reference, window : array of int
        Value counters of one feature (categories plus "other", or bins).
    edges : array of float, optional
        Ignored; accepted so every detector has the same call shape.
    threshold : float, default 0.1
        Jensen–Shannon distance from which a significant change counts as drift.
    alpha : float, default 0.01
        Significance level (uncorrected).

    Returns
    -------
    DetectorResult
    """
    return DETECTOR(reference, window, edges, threshold=threshold, alpha=alpha)
