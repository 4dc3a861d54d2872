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

from scipy import special

from monitors.detectors import _contingency
from monitors.detectors.base import ANY_KIND, FloatArray, register_test
from monitors.detectors.jensen_shannon import jensen_shannon


def log_likelihood(observed: FloatArray, expected: FloatArray) -> float:
    """One row's ``2 Σ O ln(O / E)`` (an empty cell adds nothing)."""
    return float(2.0 * special.xlogy(observed, observed / expected).sum())


gtest = register_test(
    "gtest", _contingency.homogeneity_test(log_likelihood), kinds=ANY_KIND, effect_of=jensen_shannon
)
"""G-test of a window against a reference, with Jensen–Shannon as effect."""
