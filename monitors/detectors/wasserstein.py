"""Wasserstein (earth mover's) distance on binned distributions, normalised by the reference spread.

The distance is the area between the two CDFs, ``W = ∫ |F_ref(x) − F_win(x)| dx``,
computed on the sketch's bins with the mass of each bin spread uniformly over
it (so both CDFs are piecewise linear and the integral is exact for them).
Underflow and overflow mass sits at the outer edges: beyond the reference range
the sketch cannot say how far a value went, so ``W`` is then a lower bound.

It is divided by the reference standard deviation (from the same binned
distribution), so the effect reads in reference σ: a mean shift of 0.3 σ has an
effect of about 0.3 whatever the feature's units. This is the effect size
paired with the KS test, with a practical floor of 0.1 σ.

If the reference has no spread (a constant feature), the effect is the total
variation distance instead: the fraction of the window that moved off the constant.

References
----------
.. [1] Ramdas, García Trillos & Cuturi, "On Wasserstein two-sample testing and
   related families of nonparametric tests", Entropy 19(2), 2017.

Examples
--------
>>> import numpy as np
>>> edges = np.array([0.0, 1.0, 2.0, 3.0])
>>> reference = np.array([0, 10, 10, 0, 0])   # uniform on [0, 2)
>>> window = np.array([0, 0, 10, 10, 0])      # uniform on [1, 3)
>>> result = wasserstein(reference, window, edges)
>>> round(result.statistic, 6), round(result.effect, 4), result.p_value, result.drifted
(1.0, 1.7321, None, True)
"""

from __future__ import annotations

import numpy as np

from monitors.detectors.base import (
    NUMERICAL_ONLY,
    Edges,
    FloatArray,
    proportions,
    register_distance,
)

THRESHOLD = 0.1
"""Default floor: a change under 0.1 reference σ is not worth an alert."""


def binned_distance(reference: FloatArray, window: FloatArray, edges: FloatArray) -> FloatArray:
    """Wasserstein-1 distance, in the feature's units, between binned distributions.

    Broadcasts over leading axes; the last axis holds the value counters
    ``[underflow, bins..., overflow]`` (``len(edges) + 1`` of them).
    """
    p, q = proportions(reference), proportions(window)
    # CDF at each edge: the underflow plus the bins to its left.
    d = (np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1))[..., :-1]
    a, b = d[..., :-1], d[..., 1:]
    h = np.diff(edges)
    abs_a, abs_b = np.abs(a), np.abs(b)
    same_sign = a * b >= 0
    denominator = np.where(same_sign, 1.0, abs_a + abs_b)
    # |d| is linear on each bin; where it crosses zero the area is two triangles.
    crossing = (a * a + b * b) / (2.0 * denominator)
    area = np.where(same_sign, (abs_a + abs_b) / 2.0, crossing)
    out: FloatArray = np.sum(h * area, axis=-1)
    return out


def binned_std(reference: FloatArray, edges: FloatArray) -> FloatArray:
    """Standard deviation of a binned distribution (uniform within each bin)."""
    p = proportions(reference)
    e = edges - edges[len(edges) // 2]  # centred: no cancellation for large offsets
    lo, hi = e[:-1], e[1:]
    mean = p[..., 0] * e[0] + p[..., -1] * e[-1] + np.sum(p[..., 1:-1] * (lo + hi) / 2.0, axis=-1)
    second = (
        p[..., 0] * e[0] ** 2
        + p[..., -1] * e[-1] ** 2
        + np.sum(p[..., 1:-1] * (lo * lo + lo * hi + hi * hi) / 3.0, axis=-1)
    )
    out: FloatArray = np.sqrt(np.maximum(second - mean * mean, 0.0))
    return out


def normalised_distance(reference: FloatArray, window: FloatArray, edges: Edges) -> FloatArray:
    """Wasserstein distance in reference standard deviations (vectorised effect size)."""
    if edges is None:
        raise ValueError("the Wasserstein distance needs the bin edges of the feature")
    distance = binned_distance(reference, window, edges)
    spread = binned_std(reference, edges)
    # A constant reference has one bin holding the constant: its width is one ulp.
    constant = spread <= 4.0 * np.spacing(np.abs(edges).max())
    total_variation = 0.5 * np.abs(proportions(reference) - proportions(window)).sum(axis=-1)
    out: FloatArray = np.where(
        constant, total_variation, distance / np.where(constant, 1.0, spread)
    )
    return out


def _distance_in_units(reference: FloatArray, window: FloatArray, edges: Edges) -> FloatArray:
    if edges is None:
        raise ValueError("the Wasserstein distance needs the bin edges of the feature")
    return binned_distance(reference, window, edges)


wasserstein = register_distance(
    "wasserstein",
    normalised_distance,
    kinds=NUMERICAL_ONLY,
    threshold=THRESHOLD,
    statistic=_distance_in_units,
    needs_edges=True,
)
"""Normalised Wasserstein distance between a reference and a window (no p-value).

``statistic`` is the distance in the feature's units, ``effect`` the distance
in reference standard deviations.
"""
