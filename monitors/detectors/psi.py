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
import numpy.typing as npt

from monitors.detectors.base import (
    Detector,
    DetectorResult,
    Edges,
    FloatArray,
    proportions,
    register,
)

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


def _statistic(reference: FloatArray, window: FloatArray, edges: Edges) -> tuple[float, None]:
    return float(index(reference, window, edges)), None


DETECTOR = register(
    Detector(
        name="psi",
        kinds=frozenset({"numerical", "categorical"}),
        threshold=THRESHOLD,
        effect_name="psi",
        effect=index,
        test=_statistic,
        has_p_value=False,
        needs_edges=False,
        effect_exponent=1.0,
    )
)


def psi(
    reference: npt.ArrayLike,
    window: npt.ArrayLike,
    edges: npt.ArrayLike | None = None,
    *,
    threshold: float = THRESHOLD,
) -> DetectorResult:
    """Population stability index of a window against a reference (no p-value).

    Parameters
    ----------
    reference, window : array of int
        Value counters of one feature (categories plus "other", or bins).
    edges : array of float, optional
        Ignored; accepted so every detector has the same call shape.
    threshold : float, default 0.1
        Index from which the feature counts as drifted.

    Returns
    -------
    DetectorResult
        ``statistic`` and ``effect`` are both the index.
    """
    return DETECTOR(reference, window, edges, threshold=threshold)
