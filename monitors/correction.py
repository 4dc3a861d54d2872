"""Multiple-testing correction across the features of one evaluation.

A model with 25 features tested at ``alpha = 0.01`` each would raise a false
alarm on about 22% of windows with no drift at all. Correcting the p-values
across the features evaluated together keeps the model-level rate near
``alpha``:

* **Benjamini–Hochberg** (``"bh"``, the default) controls the expected share of
  false discoveries among the flagged features. Under the global null it also
  controls the chance of any false alarm, and it is far less conservative than
  Bonferroni when several features really drift.
* **Bonferroni** (``"bonferroni"``) controls the chance of any false alarm under
  any dependence between features, at a cost in power.

Both return *adjusted* p-values: a feature is significant when its adjusted
p-value is at most ``alpha``.

References
----------
.. [1] Benjamini & Hochberg, "Controlling the false discovery rate", JRSS B 57(1), 1995.

Examples
--------
>>> adjust([0.01, 0.04, 0.03, 0.2], "bh").round(3).tolist()
[0.04, 0.053, 0.053, 0.2]
>>> adjust([0.01, 0.04, 0.03, 0.2], "bonferroni").round(3).tolist()
[0.04, 0.16, 0.12, 0.8]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Correction = Literal["bh", "bonferroni"]
CORRECTIONS: tuple[Correction, ...] = ("bh", "bonferroni")


def _check(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("p-values must be a 1-d sequence")
    if np.any(np.isnan(p)) or np.any(p < 0.0) or np.any(p > 1.0):
        raise ValueError("p-values must lie in [0, 1]")
    return p


def benjamini_hochberg(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Benjamini–Hochberg adjusted p-values (step-up), in the input order.

    >>> benjamini_hochberg([0.001, 0.5, 0.02]).round(3).tolist()
    [0.003, 0.5, 0.03]
    """
    p = _check(p_values)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    # Step-up: each adjusted value is the smallest over itself and all larger p-values.
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m, dtype=np.float64)
    out[order] = np.minimum(ranked, 1.0)
    return out


def bonferroni(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Bonferroni adjusted p-values: ``min(1, m p)``.

    >>> bonferroni([0.001, 0.5, 0.02]).round(3).tolist()
    [0.003, 1.0, 0.06]
    """
    p = _check(p_values)
    out: npt.NDArray[np.float64] = np.minimum(p * p.size, 1.0)
    return out


def adjust(p_values: npt.ArrayLike, method: Correction = "bh") -> npt.NDArray[np.float64]:
    """Adjusted p-values by ``method`` (``"bh"`` or ``"bonferroni"``)."""
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "bonferroni":
        return bonferroni(p_values)
    raise ValueError(f"correction must be one of {CORRECTIONS}, not {method!r}")
