"""Spend a label budget by value, with known inclusion probabilities.

Human labels are scarce. Taking the first records until a budget runs out
labels whatever came first; taking them uniformly wastes labels on records
the model already gets right. This module draws records with probability
proportional to their *value* to the model, and records every record's
inclusion probability ``π_i``, so that estimates from the labelled records
stay design-unbiased (Horvitz–Thompson: ``Σ_{sampled} y_i / π_i``).

A record's value adds up to four parts, each in [0, 1]:

* **uncertainty** — low confidence, a small top-1/top-2 margin, high entropy;
* **novelty** — how far its numerical features lie outside the reference's range;
* **drift** — how over-represented its bin is in an open drift incident's
  window against the reference (``1 − p_ref/p_win`` where the window has more);
* a **floor**, so every considered record keeps a positive probability (a
  record with ``π = 0`` could never be seen, and an estimate would be biased).

**Diversity**: records whose binned features are identical form a group, and
the group shares one record's value (each member's is divided by the group's
size): a thousand copies of one odd record count once.

The probabilities are ``π_i = min(1, c·v_i)`` with ``c`` solved so that
``Σ π_i`` equals the budget; records drawn independently (Poisson sampling:
the sample size is the budget in expectation) or by the pivotal method
(Deville & Tillé: exactly the budget when it is a whole number).

References
----------
.. [1] Horvitz & Thompson, "A generalization of sampling without replacement
   from a finite universe", JASA 47(260), 1952.
.. [2] Deville & Tillé, "Unequal probability sampling without replacement
   through a splitting method", Biometrika 85(1), 1998.
.. [3] Särndal, Swensson & Wretman, *Model Assisted Survey Sampling*,
   Springer 1992 (§3.2 Poisson sampling, §2.8 π-expanded estimators).

Examples
--------
>>> import numpy as np
>>> v = record_value(uncertainty=np.array([0.9, 0.1, 0.1, 0.5]))
>>> pi = inclusion_probabilities(v, budget=2.0)
>>> np.round(pi, 3).tolist()
[1.0, 0.176, 0.176, 0.647]
>>> float(pi.sum())
2.0
>>> pivotal_sample(pi, np.random.default_rng(1)).sum()   # exactly the budget
np.int64(2)
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

DEFAULT_FLOOR = 0.05


def _floats(name: str, values: npt.ArrayLike) -> Floats:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-d sequence")
    return a


def uncertainty(
    confidence: npt.ArrayLike,
    *,
    margin: npt.ArrayLike | None = None,
    entropy: npt.ArrayLike | None = None,
    n_labels: int = 2,
) -> Floats:
    """How unsure the model was, in [0, 1]: the largest of its signals (NaN: unknown, 0).

    ``1 − confidence`` scaled so the least possible confidence (``1/n_labels``)
    is 1; ``1 − margin``; entropy over its maximum ``log(n_labels)``.

    >>> uncertainty([1.0, 0.75, 0.5, np.nan]).tolist()
    [0.0, 0.5, 1.0, 0.0]
    >>> uncertainty([0.9], margin=[0.1]).round(2).tolist()
    [0.9]
    """
    if n_labels < 2:
        raise ValueError("n_labels must be at least 2")
    conf = _floats("confidence", confidence)
    parts = [np.clip((1.0 - conf) / (1.0 - 1.0 / n_labels), 0.0, 1.0)]
    if margin is not None:
        parts.append(np.clip(1.0 - _floats("margin", margin), 0.0, 1.0))
    if entropy is not None:
        parts.append(np.clip(_floats("entropy", entropy) / math.log(n_labels), 0.0, 1.0))
    stacked = np.vstack(parts)
    if stacked.shape[1] != conf.size:
        raise ValueError("confidence, margin and entropy must have one value per record")
    return np.asarray(
        np.nan_to_num(np.nanmax(np.where(np.isnan(stacked), -1.0, stacked), axis=0), nan=0.0).clip(
            0.0, 1.0
        )
    )


def novelty(values: npt.ArrayLike, low: npt.ArrayLike, high: npt.ArrayLike) -> Floats:
    """Distance outside the reference's ``[low, high]``, in its ranges, capped at 1.

    ``values`` is ``(records, features)``; the largest over features counts.
    Missing values (NaN) are not novel.

    >>> novelty([[5.0, 0.0], [12.0, 0.0], [0.0, -30.0]], [0.0, -10.0], [10.0, 10.0]).tolist()
    [0.0, 0.2, 1.0]
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("values must be a (records, features) matrix")
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    if lo.shape != (x.shape[1],) or hi.shape != lo.shape:
        raise ValueError("low and high need one value per feature")
    span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
    outside = np.maximum(lo - x, 0.0) + np.maximum(x - hi, 0.0)
    dist = np.nan_to_num(outside / span, nan=0.0)
    if x.shape[1] == 0:
        return np.zeros(x.shape[0])
    return np.asarray(np.clip(dist.max(axis=1), 0.0, 1.0))


def drift_affinity(
    bins: npt.ArrayLike, reference_counts: npt.ArrayLike, window_counts: npt.ArrayLike
) -> Floats:
    """How over-represented each record's bin is in a drifted window: ``1 − p_ref/p_win``.

    ``bins`` are the records' bin indices for one drifted feature; the counts are
    that feature's reference and window histograms. A bin the window holds no more
    of than the reference scores 0; a bin the reference never saw scores 1.

    >>> drift_affinity([0, 1, 2], [50, 50, 0], [20, 60, 20]).round(3).tolist()
    [0.0, 0.167, 1.0]
    """
    b = np.asarray(bins, dtype=np.intp)
    ref = np.asarray(reference_counts, dtype=np.float64)
    win = np.asarray(window_counts, dtype=np.float64)
    if ref.shape != win.shape or ref.ndim != 1:
        raise ValueError("reference and window counts must be histograms of the same bins")
    if b.size and (b.min() < 0 or b.max() >= ref.size):
        raise ValueError("a bin index lies outside the histograms")
    p_ref = ref / max(ref.sum(), 1.0)
    p_win = win / max(win.sum(), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(p_win > p_ref, 1.0 - p_ref / p_win, 0.0)
    return np.asarray(score[b])


def diversity_groups(binned: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """A group id per record: records with identical binned features share one.

    >>> diversity_groups([[1, 2], [1, 2], [0, 2]]).tolist()
    [1, 1, 0]
    """
    rows = np.asarray(binned)
    if rows.ndim != 2:
        raise ValueError("binned features must be a (records, features) matrix")
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    _, inverse = np.unique(rows, axis=0, return_inverse=True)
    return np.asarray(inverse.reshape(-1), dtype=np.intp)


def record_value(
    *,
    uncertainty: npt.ArrayLike,
    novelty: npt.ArrayLike | None = None,
    drift: npt.ArrayLike | None = None,
    groups: npt.ArrayLike | None = None,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    floor: float = DEFAULT_FLOOR,
) -> Floats:
    """Each record's value: ``floor + Σ weight·part``, shared within its diversity group.

    >>> record_value(uncertainty=[0.5, 0.5, 0.5], groups=[0, 0, 1]).round(3).tolist()
    [0.275, 0.275, 0.55]
    """
    u = _floats("uncertainty", uncertainty)
    if not math.isfinite(floor) or floor <= 0:
        raise ValueError("floor must be a finite number > 0 (every record needs a chance)")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError("weights must be finite numbers >= 0")
    total = floor + weights[0] * np.nan_to_num(u, nan=0.0)
    for w, part in ((weights[1], novelty), (weights[2], drift)):
        if part is not None:
            p = _floats("novelty/drift", part)
            if p.shape != u.shape:
                raise ValueError("every part needs one value per record")
            total = total + w * np.nan_to_num(p, nan=0.0)
    if groups is not None:
        g = np.asarray(groups, dtype=np.intp)
        if g.shape != u.shape:
            raise ValueError("groups needs one id per record")
        sizes = np.bincount(g)
        total = total / sizes[g]
    return np.asarray(total, dtype=np.float64)


def inclusion_probabilities(values: npt.ArrayLike, budget: float) -> Floats:
    """``π_i = min(1, c·v_i)`` with ``c`` such that ``Σ π_i = min(budget, n)``.

    Records whose scaled value reaches 1 are taken for certain and the rest of
    the budget is shared by the others, repeated until no new record reaches 1.

    >>> inclusion_probabilities([10.0, 1.0, 1.0], 2.0).tolist()
    [1.0, 0.5, 0.5]
    >>> inclusion_probabilities([1.0, 2.0], 5.0).tolist()
    [1.0, 1.0]
    """
    v = _floats("values", values)
    if np.any(~np.isfinite(v)) or np.any(v <= 0):
        raise ValueError("values must be finite and > 0")
    if not math.isfinite(budget) or budget < 0:
        raise ValueError("budget must be a finite number >= 0")
    n = v.size
    if budget >= n:
        return np.ones(n)
    pi = np.zeros(n)
    certain = np.zeros(n, dtype=bool)
    while True:
        left = budget - certain.sum()
        rest = ~certain
        c = left / v[rest].sum() if left > 0 else 0.0
        scaled = c * v
        new = rest & (scaled >= 1.0)
        if not new.any():
            pi[rest] = scaled[rest]
            pi[certain] = 1.0
            return pi
        certain |= new


def scaled_probabilities(values: npt.ArrayLike, scale: float) -> Floats:
    """``π_i = min(1, scale·v_i)``: a stream's share when its total is not known yet.

    >>> scaled_probabilities([0.5, 2.0], 0.8).tolist()
    [0.4, 1.0]
    """
    v = _floats("values", values)
    if not math.isfinite(scale) or scale < 0:
        raise ValueError("scale must be a finite number >= 0")
    return np.asarray(np.minimum(1.0, scale * v))


def poisson_sample(pi: npt.ArrayLike, rng: np.random.Generator) -> Bools:
    """Each record drawn independently with its probability; size ``Σπ`` in expectation."""
    p = _probabilities(pi)
    return np.asarray(rng.random(p.size) < p)


def pivotal_sample(pi: npt.ArrayLike, rng: np.random.Generator) -> Bools:
    """Deville–Tillé's ordered pivotal method: exactly ``Σπ`` records when it is whole.

    Two undecided records at a time exchange probability until one of them is 0
    or 1; each record's inclusion probability stays ``π_i`` exactly.
    """
    p = _probabilities(pi).copy()
    eps = 1e-12
    undecided = [i for i in range(p.size) if eps < p[i] < 1 - eps]
    holder: int | None = None
    for j in undecided:
        if holder is None:
            holder = j
            continue
        a, b = p[holder], p[j]
        if a + b < 1:
            if rng.random() < b / (a + b):
                p[holder], p[j] = 0.0, a + b
                holder = j
            else:
                p[holder], p[j] = a + b, 0.0
        else:
            if rng.random() < (1 - b) / (2 - a - b):
                p[holder], p[j] = 1.0, a + b - 1
                holder = j
            else:
                p[holder], p[j] = a + b - 1, 1.0
    if holder is not None and eps < p[holder] < 1 - eps:
        p[holder] = 1.0 if rng.random() < p[holder] else 0.0
    return np.asarray(p > 0.5)


def _probabilities(pi: npt.ArrayLike) -> Floats:
    p = _floats("pi", pi)
    if np.any(np.isnan(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError("inclusion probabilities must lie in [0, 1]")
    return p


def horvitz_thompson(y: npt.ArrayLike, pi: npt.ArrayLike) -> tuple[float, float]:
    """The π-expanded total of the sampled ``y`` and its variance estimate under Poisson sampling.

    ``y`` and ``pi`` are the sampled records' values and probabilities;
    the variance is ``Σ (1 − π_i) y_i² / π_i²``.

    >>> horvitz_thompson([1.0, 0.0, 1.0], [0.5, 0.25, 1.0])
    (3.0, 2.0)
    """
    yy = _floats("y", y)
    p = _probabilities(pi)
    if yy.shape != p.shape:
        raise ValueError("one probability per sampled value is needed")
    if np.any(p == 0):
        raise ValueError("a sampled record cannot have probability 0")
    total = float(np.sum(yy / p))
    variance = float(np.sum((1.0 - p) * yy**2 / p**2))
    return total, variance
