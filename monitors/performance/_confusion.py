"""Metrics of a confusion matrix and their delta-method variances.

The matrix ``M`` is indexed ``[predicted, true]``. For the realized estimate it
holds counts of labelled records; for CBPE it holds the expected counts (the
sums of calibrated probabilities). The metric formulas are the same for both;
only the covariance of ``M`` differs:

* realized — records are a sample of the model's traffic, so ``M`` is
  multinomial: ``Var f ≈ Σ g² M − (Σ g M)² / n``;
* CBPE — the predictions are fixed and each record's true class is drawn
  from its calibrated probabilities ``p`` (independently across records), so
  within a predicted row ``i`` ``Cov(M_ij, M_il) = Σ_r (δ_jl p_rj − p_rj p_rl)``
  and ``Var f ≈ Σ_i [Σ_j g_ij² M_ij − Σ_jl g_ij g_il Q_ijl]`` with
  ``Q_ijl = Σ_{r in row i} p_rj p_rl``.

``g`` is the gradient of the metric at ``M``, by central differences (the
metrics are ratios of cell sums, smooth wherever their denominators are not 0).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

RATIO_METRICS = ("accuracy", "precision", "recall", "f1")


def _safe_ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(
            denominator != 0, numerator / np.where(denominator == 0, 1, denominator), 0.0
        )
    return np.asarray(out, dtype=np.float64)


def value(
    name: str, m: FloatArray, positive: int | None, present: npt.NDArray[np.bool_]
) -> FloatArray:
    """The metric over the last two axes of ``m`` (any leading axes broadcast).

    Binary (``positive`` given): the positive class's precision, recall or F1.
    Multiclass: their macro average over the ``present`` classes (those with
    any mass in their row or column), a class's 0/0 counting as 0, as
    scikit-learn does.
    """
    rows = m.sum(axis=-1)  # predicted as i
    cols = m.sum(axis=-2)  # truly j
    diag = np.diagonal(m, axis1=-2, axis2=-1)
    if name == "accuracy":
        return _safe_ratio(diag.sum(axis=-1), rows.sum(axis=-1))
    if name == "precision":
        per_class = _safe_ratio(diag, rows)
    elif name == "recall":
        per_class = _safe_ratio(diag, cols)
    elif name == "f1":
        per_class = _safe_ratio(2 * diag, rows + cols)
    else:
        raise ValueError(f"unknown confusion metric {name!r}")
    if positive is not None:
        return np.asarray(per_class[..., positive], dtype=np.float64)
    return np.asarray(per_class[..., present].mean(axis=-1), dtype=np.float64)


def defined(name: str, m: FloatArray, positive: int | None) -> bool:
    """Whether the metric is defined at ``m`` (its denominator is not 0)."""
    total = float(m.sum())
    if total <= 0:
        return False
    if positive is None or name == "accuracy":
        return True
    if name == "precision":
        return float(m[positive, :].sum()) > 0
    if name == "recall":
        return float(m[:, positive].sum()) > 0
    return float(m[positive, :].sum() + m[:, positive].sum()) > 0


def present_classes(m: FloatArray) -> npt.NDArray[np.bool_]:
    """Classes with any mass among the predictions or the truths."""
    return np.asarray((m.sum(axis=0) + m.sum(axis=1)) > 0)


def gradient(name: str, m: FloatArray, positive: int | None) -> FloatArray:
    """The metric's gradient with respect to every cell of ``m`` (central differences)."""
    k = m.shape[0]
    present = present_classes(m)
    h = 1e-6 * max(float(m.sum()), 1.0)
    basis = np.eye(k * k).reshape(k * k, k, k) * h
    up = value(name, m[None] + basis, positive, present)
    down = value(name, m[None] - basis, positive, present)
    return np.asarray(((up - down) / (2 * h)).reshape(k, k), dtype=np.float64)


def multinomial_variance(name: str, m: FloatArray, positive: int | None) -> float:
    """Delta-method variance when ``m`` counts a sample of records (realized)."""
    n = float(m.sum())
    g = gradient(name, m, positive)
    return max(float((g * g * m).sum() - (g * m).sum() ** 2 / n), 0.0)


def expected_variance(name: str, m: FloatArray, cross: FloatArray, positive: int | None) -> float:
    """Delta-method variance of the realized metric around CBPE's expected matrix.

    ``cross`` is ``Q`` (shape ``(k, k, k)``) or only its diagonal ``Σ p_rj²``
    (shape ``(k, k)``), in which case the (negative) covariances between the
    true classes of one record are left out.
    """
    g = gradient(name, m, positive)
    first = float((g * g * m).sum())
    if cross.ndim == 3:
        second = float(np.einsum("ij,il,ijl->", g, g, cross))
    else:
        second = float((g * g * cross).sum())
    return max(first - second, 0.0)
