"""Direct loss estimation (DLE): regression MAE and RMSE without labels.

On the reference (features, predictions and true values) two gradient-boosted
models learn the *loss* from the features and the prediction: one the
absolute error ``|e|`` (its conditional mean, for the MAE), one the squared
error ``e²`` (for the RMSE) [1]_. scikit-learn's ``HistGradientBoostingRegressor``
handles missing values and categories natively. At ingest each block keeps
``Σ â`` and ``Σ ŝ`` of the predicted losses, so a window's estimate
``MAE ≈ Σâ / n`` and ``RMSE ≈ sqrt(Σŝ / n)`` costs O(blocks).

**Interval.** Given the inputs, each record's loss still varies around its
prediction. The variance is modelled as proportional to the square of the
predicted loss, ``Var(|e| | x) = c₁ â²`` and ``Var(e² | x) = c₂ ŝ²`` (a constant
coefficient of variation: exact for any error distribution of one shape whose
scale depends on ``x``; 0.57 and 2 for a normal error), with ``c₁`` and ``c₂``
measured on the reference from two-fold out-of-fold predictions, so that
the loss models' own per-record error is counted. Blocks keep ``c₁ Σâ²`` and
``c₂ Σŝ²``. The models were fitted on ``n_ref`` records, and their error does
not average out over a window, so as for CBPE the variance is multiplied by
``1 + n / n_ref``.

**The loss models' own error where traffic moved.** That factor is a global
average. Where a covariate shift takes traffic to inputs the reference had
few of, the loss models are less certain, and their error there is shared by
every record of the window: it does not average out. The two-fold models that
measure ``c₁`` and ``c₂`` are kept and read at ingest too: blocks keep
``Σ(â_A − â_B)`` (and the same for ``e²``), and a window's mean gap ``d``
between two models fitted on independent halves of the reference estimates
that error on *this window's inputs*, without labels: ``Var(A − B) = 2σ²_half``
and a model fitted on all rows has about half a half-model's variance, so the
full model's error variance is about ``d² / 4``, added to the window's
variance (one pair of halves: a noisy, one-degree-of-freedom estimate; read on
about 100 records of each batch). A bias
that every model fitted on the reference shares — the relation between inputs
and errors itself changed — it cannot see, no more than the rest. The
95% interval is normal (delta method for the RMSE) and says where the realized
value of the window should fall.

**Assumption.** The relation between inputs and errors learnt on the
reference holds (no concept shift), and the analysed inputs lie where the
reference had data.

References
----------
.. [1] NannyML, "Direct Loss Estimation (DLE)",
   https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.uniform(0, 1, 4000)
>>> y_pred = 10 * x
>>> y_true = y_pred + rng.normal(0, 0.2 + 2 * x)       # errors grow with x
>>> model = fit_dle({"x": x}, y_true, y_pred)
>>> later = rng.uniform(0.5, 1, 4000)                    # traffic moves to large x
>>> sums = dle_sums(model, {"x": later}, 10 * later)
>>> truth = np.mean(np.abs(rng.normal(0, 0.2 + 2 * later)))
>>> est = sums.estimate("mae")
>>> bool(abs(est.value - truth) < 0.05), est.n
(True, 4000)
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from monitors.performance._sums import Summable
from monitors.performance.estimate import Estimate, normal
from monitors.performance.regression import RegressionCounts, errors, rmse_estimate

FloatArray = npt.NDArray[np.float64]

MIN_ROWS = 100
GAP_SAMPLE = 100
"""Records per batch on which the half-models' gap is read (see ``LossModel.fold_gaps``)."""
MAX_CATEGORIES = 250
"""Categories per feature kept for the loss models (the most frequent); others are missing."""
_FORMAT = 1


@dataclass(frozen=True)
class LossModel:
    """The fitted DLE models and what they need to read a batch.

    Attributes
    ----------
    features : tuple of str
        The feature columns, in the models' order (the prediction comes last).
    categories : dict of str to tuple of str
        The categorical features and their reference categories.
    abs_model, sq_model : HistGradientBoostingRegressor
        Models of ``|e|`` and ``e²``.
    abs_dispersion, sq_dispersion : float
        ``c₁`` and ``c₂`` (see the module docstring).
    rows : int
        Reference records the models were fitted on.
    abs_folds, sq_folds : tuple of two HistGradientBoostingRegressor, or ()
        The models of ``|e|`` and ``e²`` fitted on each half of the reference
        (empty for models stored before they were kept).
    """

    features: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    abs_model: Any
    sq_model: Any
    abs_dispersion: float
    sq_dispersion: float
    rows: int = 0
    abs_folds: tuple[Any, ...] = ()
    sq_folds: tuple[Any, ...] = ()

    def to_bytes(self) -> bytes:
        """Serialise (pickle; only load what this service stored itself)."""
        return pickle.dumps({"format": _FORMAT, "model": self}, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> LossModel:
        loaded = pickle.loads(data)  # only bytes this service's own to_bytes wrote
        if not isinstance(loaded, dict) or loaded.get("format") != _FORMAT:
            raise ValueError("not a stored LossModel (or one of an unknown format)")
        model = loaded["model"]
        if not isinstance(model, cls):
            raise ValueError("not a stored LossModel")
        return model

    def matrix(self, columns: Mapping[str, Any], y_pred: Any) -> FloatArray:
        """The models' input matrix: features (categories as codes) and the prediction."""
        pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
        n = pred.size
        out = np.empty((n, len(self.features) + 1))
        for j, name in enumerate(self.features):
            raw = columns.get(name)
            if raw is None:
                out[:, j] = np.nan
                continue
            values = _column(raw, categorical=name in self.categories)
            if values.shape[0] != n:
                raise ValueError(
                    f"feature {name!r} has {values.shape[0]} values for {n} predictions"
                )
            if name in self.categories:
                lookup = {c: float(i) for i, c in enumerate(self.categories[name])}
                out[:, j] = [
                    lookup.get(str(v), np.nan) if v is not None else np.nan for v in values
                ]
            else:
                out[:, j] = values
        out[:, -1] = pred
        return out

    def predict(
        self,
        columns: Mapping[str, Any],
        y_pred: Any,
        rows: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Predicted ``|e|`` and ``e²`` of each record (or of ``rows``), never negative."""
        x = self.matrix(columns, y_pred)
        if rows is not None:
            x = x[rows]
        if x.shape[0] == 0:
            return np.zeros(0), np.zeros(0)
        with _one_thread():
            a = np.clip(self.abs_model.predict(x), 0.0, None)
            s = np.clip(self.sq_model.predict(x), 0.0, None)
        return np.asarray(a, dtype=np.float64), np.asarray(s, dtype=np.float64)

    def fold_gaps(
        self,
        columns: Mapping[str, Any],
        y_pred: Any,
        rows: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[float, float]:
        """``Σ(â_A − â_B)`` and ``Σ(ŝ_A − ŝ_B)``: the half-models' disagreement on these
        records (0, 0 for models stored without their halves).

        Read on ``GAP_SAMPLE`` evenly spaced records of the batch and scaled to it (four
        more tree ensembles on every record would cost three times DLE's ingest; the
        sample's own noise adds a little to ``d²``, on the safe side).
        """
        if len(self.abs_folds) != 2 or len(self.sq_folds) != 2:
            return 0.0, 0.0
        x = self.matrix(columns, y_pred)
        if rows is not None:
            x = x[rows]
        n = x.shape[0]
        if n == 0:
            return 0.0, 0.0
        x = x[:: max(1, n // GAP_SAMPLE)]
        with _one_thread():
            a = [np.clip(m.predict(x), 0.0, None) for m in self.abs_folds]
            s = [np.clip(m.predict(x), 0.0, None) for m in self.sq_folds]
        scale = n / x.shape[0]
        return float((a[0] - a[1]).sum() * scale), float((s[0] - s[1]).sum() * scale)


def _column(raw: Any, *, categorical: bool) -> npt.NDArray[Any]:
    """A feature column as objects (categorical) or floats with NaN for missing values."""
    if categorical:
        return np.asarray(raw, dtype=object).reshape(-1)
    try:
        return np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        values = np.asarray(raw, dtype=object).reshape(-1)
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _regressor(categorical: npt.NDArray[np.bool_], seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    # No early stopping: on a noisy target such as |e| it stops after a few dozen
    # rounds and underfits; a slower rate with larger leaves matched LightGBM's
    # accuracy (NannyML's DLE) on its car-price data (bench/performance_estimation.py).
    return HistGradientBoostingRegressor(
        max_iter=300,
        learning_rate=0.05,
        min_samples_leaf=50,
        early_stopping=False,
        categorical_features=categorical if categorical.any() else None,
        random_state=seed,
    )


def _one_thread() -> Any:
    # OpenMP threads that spin-wait for busy cores make fitting up to 40× slower on a
    # shared machine; one thread per call is predictable (the service is multi-process).
    # threadpool_limits only reaches OpenMP runtimes already loaded: load scikit-learn's
    # first, or the limit silently does nothing (fitting took minutes on a busy machine).
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    return threadpool_limits(limits=1, user_api="openmp")


def fit_dle(columns: Mapping[str, Any], y_true: Any, y_pred: Any, *, seed: int = 0) -> LossModel:
    """Fit the DLE loss models on the reference.

    Parameters
    ----------
    columns : mapping of str to array-like
        The reference's features (numbers; str/object columns are categorical).
    y_true, y_pred : array-like
        True values and the model's predictions.
    seed : int
        For the fold split and the models (fitting is deterministic given it).

    Returns
    -------
    LossModel
    """
    truth, pred, keep = _usable_rows(y_true, y_pred)
    categories = _categories(columns, keep)
    features = tuple(columns)
    shell = LossModel(features, categories, None, None, 1.0, 1.0)
    x = shell.matrix(columns, pred)[keep]
    e = errors(truth[keep], pred[keep])
    abs_e, sq_e = np.abs(e), e * e
    categorical = np.array([f in categories for f in features] + [False])
    with _one_thread():
        oof_a, abs_folds = _out_of_fold(x, abs_e, categorical, seed)
        oof_s, sq_folds = _out_of_fold(x, sq_e, categorical, seed)
        abs_model = _regressor(categorical, seed).fit(x, abs_e)
        sq_model = _regressor(categorical, seed).fit(x, sq_e)
    c1 = float(((abs_e - oof_a) ** 2).sum() / max((oof_a**2).sum(), 1e-300))
    c2 = float(((sq_e - oof_s) ** 2).sum() / max((oof_s**2).sum(), 1e-300))
    return LossModel(
        features=features,
        categories=categories,
        abs_model=abs_model,
        sq_model=sq_model,
        abs_dispersion=c1,
        sq_dispersion=c2,
        rows=int(e.size),
        abs_folds=tuple(abs_folds),
        sq_folds=tuple(sq_folds),
    )


def _usable_rows(
    y_true: Any, y_pred: Any
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """The true values, the predictions, and which rows have both (enough of them, or raise)."""
    truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if truth.size != pred.size:
        raise ValueError(f"{truth.size} true values for {pred.size} predictions")
    keep = np.isfinite(truth) & np.isfinite(pred)
    if keep.sum() < MIN_ROWS:
        raise ValueError(
            f"DLE needs at least {MIN_ROWS} reference rows with a true value and a prediction, "
            f"got {int(keep.sum())}"
        )
    return truth, pred, keep


def _categories(
    columns: Mapping[str, Any], keep: npt.NDArray[np.bool_]
) -> dict[str, tuple[str, ...]]:
    """Each categorical column's most frequent values (at most ``MAX_CATEGORIES``)."""
    categories: dict[str, tuple[str, ...]] = {}
    for name, raw in columns.items():
        values = np.asarray(raw)
        if values.dtype.kind in "OUS":
            present = [str(v) for v in np.asarray(raw, dtype=object)[keep] if v is not None]
            uniques, counts = np.unique(np.asarray(present, dtype=str), return_counts=True)
            order = np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]
            categories[name] = tuple(str(uniques[i]) for i in order)
    return categories


def _out_of_fold(
    x: npt.NDArray[np.float64],
    loss: npt.NDArray[np.float64],
    categorical: npt.NDArray[np.bool_],
    seed: int,
) -> tuple[npt.NDArray[np.float64], list[Any]]:
    """Two half-reference models of ``loss`` and each one's predictions on the other half.

    The out-of-fold predictions measure how far records fall from the predicted
    loss (the dispersion); the two models' gap on a window's inputs measures the
    loss models' own error there.
    """
    fold = np.random.default_rng(seed).integers(0, 2, size=loss.size)
    oof = np.empty(loss.size)
    models = []
    for f in (0, 1):
        train, test = fold != f, fold == f
        model = _regressor(categorical, seed).fit(x[train], loss[train])
        oof[test] = model.predict(x[test])
        models.append(model)
    return np.clip(oof, 0.0, None), models


@dataclass(frozen=True, eq=False)
class EstimatedRegression(RegressionCounts, Summable):
    """DLE block sums: ``n``, ``Σâ``, ``Σŝ``, ``c₁Σâ²``, ``c₂Σŝ²``, the half-models' gaps
    (and the reference's size)."""

    _kind: ClassVar[str] = "estimated_regression"
    _shape_fields: ClassVar[tuple[str, ...]] = ("reference_rows",)

    reference_rows: int
    n_records: float
    sum_abs: float
    sum_sq: float
    var_abs: float
    var_sq: float
    gap_abs: float = 0.0  # Σ(â_A − â_B): the half-models' disagreement
    gap_sq: float = 0.0

    @classmethod
    def empty(cls, model: LossModel | None = None) -> EstimatedRegression:
        return cls(0 if model is None else model.rows, 0.0, 0.0, 0.0, 0.0, 0.0)

    def estimate(self, name: str) -> Estimate | None:
        """Estimated MAE or RMSE with the 95% interval of its realized value."""
        n = self.n_records
        if n <= 0:
            return None
        # the loss models' own error does not average out over the window (as CBPE's)
        inflation = 1.0 + (n / self.reference_rows if self.reference_rows > 0 else 0.0)
        # and their error on this window's inputs, from the half-models' gap: d² / 4
        if name == "mae":
            var = max(self.var_abs, 0.0) * inflation / n**2 + (self.gap_abs / n) ** 2 / 4
            return normal(self.sum_abs / n, math.sqrt(var), n=self.n)
        if name == "rmse":
            var = max(self.var_sq, 0.0) * inflation / n**2 + (self.gap_sq / n) ** 2 / 4
            return rmse_estimate(self.sum_sq / n, math.sqrt(var), self.n)
        return None


def dle_sums(model: LossModel, columns: Mapping[str, Any], y_pred: Any) -> EstimatedRegression:
    """DLE sums of a batch of predictions (rows without a prediction are skipped)."""
    pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    keep = np.isfinite(pred)
    rows = None if keep.all() else keep
    a, s = model.predict(columns, pred, rows=rows)
    gap_abs, gap_sq = model.fold_gaps(columns, pred, rows=rows)
    return EstimatedRegression(
        reference_rows=model.rows,
        n_records=float(a.size),
        sum_abs=float(a.sum()),
        sum_sq=float(s.sum()),
        var_abs=model.abs_dispersion * float((a * a).sum()),
        var_sq=model.sq_dispersion * float((s * s).sum()),
        gap_abs=gap_abs,
        gap_sq=gap_sq,
    )
