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
from scipy import special

from monitors.detectors.base import ANY_KIND, Edges, FloatArray, proportions, register_distance

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


jensen_shannon = register_distance("jensen_shannon", distance, kinds=ANY_KIND, threshold=THRESHOLD)
"""Jensen–Shannon distance between a reference and a window (no p-value)."""
