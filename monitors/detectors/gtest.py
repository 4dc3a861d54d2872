"""G-test (likelihood-ratio test) of homogeneity on counts.

Same table and degrees of freedom as :mod:`monitors.detectors.chi2`, with the
statistic ``G = 2 Σ O ln(O / E)`` (scipy's ``chi2_contingency`` with
``lambda_="log-likelihood"``). It is additive over nested tables, which some
analyses want; with small expected counts its p-values are less accurate than
Pearson's. The effect size is the Jensen–Shannon distance.

References
----------
.. [1] Sokal & Rohlf, "Biometry", 4th ed., Freeman, 2012, §17.

Examples
--------
>>> result = gtest([500, 300, 200], [400, 300, 300])
>>> round(result.statistic, 2), f"{result.p_value:.1e}"
(31.27, '1.6e-07')
"""

from __future__ import annotations

import numpy.typing as npt
from scipy import special, stats

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
    statistic = float(2.0 * (special.xlogy(r, r / er).sum() + special.xlogy(w, w / ew).sum()))
    statistic = max(statistic, 0.0)
    return statistic, float(stats.chi2.sf(statistic, dof))


DETECTOR = register(
    Detector(
        name="gtest",
        kinds=frozenset({"numerical", "categorical"}),
        threshold=THRESHOLD,
        effect_name="jensen_shannon",
        effect=js_distance,
        test=_test,
        has_p_value=True,
        needs_edges=False,
    )
)


def gtest(
    reference: npt.ArrayLike,
    window: npt.ArrayLike,
    edges: npt.ArrayLike | None = None,
    *,
    threshold: float = THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
) -> DetectorResult:
    """G-test of a window against a reference, with Jensen–Shannon as effect.

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
