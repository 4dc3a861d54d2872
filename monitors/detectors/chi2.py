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

from monitors.detectors import _contingency
from monitors.detectors.base import ANY_KIND, FloatArray, register_test
from monitors.detectors.jensen_shannon import jensen_shannon


def pearson(observed: FloatArray, expected: FloatArray) -> float:
    """One row's ``Σ (O − E)² / E``."""
    return float((((observed - expected) ** 2) / expected).sum())


chi2 = register_test(
    "chi2", _contingency.homogeneity_test(pearson), kinds=ANY_KIND, effect_of=jensen_shannon
)
"""Chi-square test of a window against a reference, with Jensen–Shannon as effect."""
