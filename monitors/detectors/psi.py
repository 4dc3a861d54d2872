"""Population stability index.

``PSI = Σ (q_i − p_i) ln(q_i / p_i)`` over the bins, the symmetrised KL
divergence familiar from credit scoring, where 0.1 reads as "some change" and
0.25 as "major change". Empty cells are floored at a proportion of 1e-4 (as
Evidently does), so a new category gives a large but finite value.

PSI has no test and a strong small-sample bias: on identical distributions it
behaves like a chi-square over ``n``, about ``(bins − 1) / n``. With ten bins,
PSI ≥ 0.1 already fires on about half of identical 100-row samples. Used through
:func:`monitors.drift.evaluate` with ``min_effect="auto"`` its threshold is
calibrated from the reference at the window's size, which removes that bias.

References
----------
.. [1] Yurdakul, "Statistical properties of population stability index",
   Western Michigan University, 2018.

Examples
--------
>>> result = psi([25, 25, 25, 25], [10, 20, 30, 40])
>>> round(result.statistic, 3), result.p_value, result.drifted
(0.228, None, True)
"""

from __future__ import annotations

import numpy as np

from monitors.detectors.base import ANY_KIND, Edges, FloatArray, proportions, register_distance

THRESHOLD = 0.1
"""Default floor: the conventional "some change" level."""

EPSILON = 1e-4
"""Floor on a cell's proportion, so empty cells give a finite index."""


def index(reference: FloatArray, window: FloatArray, edges: Edges = None) -> FloatArray:
    """PSI over the last axis; broadcasts (vectorised effect)."""
    del edges
    p = np.maximum(proportions(reference), EPSILON)
    q = np.maximum(proportions(window), EPSILON)
    out: FloatArray = np.sum((q - p) * np.log(q / p), axis=-1)
    return out


psi = register_distance("psi", index, kinds=ANY_KIND, threshold=THRESHOLD, effect_exponent=1.0)
"""Population stability index of a window against a reference (no p-value)."""
