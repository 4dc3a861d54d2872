"""Jensen–Shannon distance between binned or categorical distributions.

``JS(P, Q) = sqrt(½ KL(P ‖ M) + ½ KL(Q ‖ M))`` with ``M = ½ (P + Q)`` and
base-2 logarithms, so it lies in ``[0, 1]``: 0 for identical distributions,
1 for disjoint ones. Unlike PSI or KL it is symmetric and finite when one side
has an empty cell, which is exactly what a brand-new category looks like. It
is the effect size paired with the chi-square and G-tests, with a practical
floor of 0.1.

References
----------
.. [1] Endres & Schindelin, "A new metric for probability distributions",
   IEEE Trans. Inf. Theory 49(7), 2003.

Examples
--------
>>> result = jensen_shannon([50, 50, 0], [50, 40, 10])   # a new category takes 10%
>>> round(result.effect, 3), result.p_value, result.drifted
(0.232, None, True)
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import special

from monitors.detectors.base import (
    Detector,
    DetectorResult,
    Edges,
    FloatArray,
    proportions,
    register,
)

THRESHOLD = 0.1
"""Default floor on the distance (base 2)."""


def distance(reference: FloatArray, window: FloatArray, edges: Edges = None) -> FloatArray:
    """Jensen–Shannon distance (base 2) over the last axis; broadcasts (vectorised effect)."""
    del edges  # order and geometry play no part
    p, q = proportions(reference), proportions(window)
    m = 0.5 * (p + q)
    divergence = 0.5 * (special.rel_entr(p, m).sum(axis=-1) + special.rel_entr(q, m).sum(axis=-1))
    out: FloatArray = np.sqrt(np.maximum(divergence / math.log(2.0), 0.0))
    return out


def _statistic(reference: FloatArray, window: FloatArray, edges: Edges) -> tuple[float, None]:
    return float(distance(reference, window, edges)), None


DETECTOR = register(
    Detector(
        name="jensen_shannon",
        kinds=frozenset({"numerical", "categorical"}),
        threshold=THRESHOLD,
        effect_name="jensen_shannon",
        effect=distance,
        test=_statistic,
        has_p_value=False,
        needs_edges=False,
    )
)


def jensen_shannon(
    reference: npt.ArrayLike,
    window: npt.ArrayLike,
    edges: npt.ArrayLike | None = None,
    *,
    threshold: float = THRESHOLD,
) -> DetectorResult:
    """Jensen–Shannon distance between a reference and a window (no p-value).

    Parameters
    ----------
    reference, window : array of int
        Value counters of one feature (categories plus "other", or bins).
    edges : array of float, optional
        Ignored; accepted so every detector has the same call shape.
    threshold : float, default 0.1
        Distance from which the feature counts as drifted.

    Returns
    -------
    DetectorResult
        ``statistic`` and ``effect`` are both the distance.
    """
    return DETECTOR(reference, window, edges, threshold=threshold)
