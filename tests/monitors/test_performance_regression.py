"""Regression: realized MAE/RMSE against scikit-learn, DLE without labels, simulations."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from sklearn import metrics as skm

from monitors.performance import (
    EstimatedRegression,
    LabelledRegression,
    LossModel,
    dle_sums,
    fit_dle,
    labelled_regression,
    metric,
)


def test_realized_matches_scikit_learn_and_sums_add_up() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.normal(10, 3, 2000)
    y_pred = y_true + rng.standard_t(4, 2000)
    whole = labelled_regression(y_true, y_pred)
    mae, rmse = metric(whole, "mae"), metric(whole, "rmse")
    assert mae is not None
    assert rmse is not None
    assert mae.value == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert rmse.value == pytest.approx(np.sqrt(skm.mean_squared_error(y_true, y_pred)))
    blocks = sum(
        (
            labelled_regression(y_true[i : i + 300], y_pred[i : i + 300])
            for i in range(0, 2000, 300)
        ),
        LabelledRegression.empty(),
    )
    restored = LabelledRegression.from_json(json.loads(json.dumps(blocks.to_json())))
    assert metric(restored, "mae").value == pytest.approx(mae.value)  # type: ignore[union-attr]
    assert metric(restored, "rmse").value == pytest.approx(rmse.value)  # type: ignore[union-attr]
    assert metric(LabelledRegression.empty(), "mae") is None


def test_golden_values() -> None:
    sums = labelled_regression([1.0, 2.0, 3.0, 4.0, np.nan], [2.0, 2.0, 5.0, 3.0, 1.0])
    mae = metric(sums, "mae")
    assert mae is not None
    # errors 1, 0, 2, -1 (the NaN row is skipped): MAE 1, sd of |e| = sqrt(2/3)
    assert (mae.value, mae.n) == (1.0, 4)
    assert mae.ci_high == pytest.approx(1 + 1.959963984540054 * np.sqrt(2 / 3) / 2)
    rmse = metric(sums, "rmse")
    assert rmse is not None
    assert rmse.value == pytest.approx(np.sqrt(1.5))


def test_realized_intervals_cover_the_process_value() -> None:
    rng = np.random.default_rng(1)
    sigma = 2.0
    true_mae, true_rmse = sigma * np.sqrt(2 / np.pi), sigma
    e = rng.normal(0, sigma, (1000, 200))
    hits = {"mae": 0, "rmse": 0}
    for row in e:
        sums = labelled_regression(np.zeros(row.size), row)
        for name, truth in [("mae", true_mae), ("rmse", true_rmse)]:
            est = metric(sums, name)
            assert est is not None
            hits[name] += est.ci_low <= truth <= est.ci_high
    assert hits["mae"] / 1000 >= 0.93
    assert hits["rmse"] / 1000 >= 0.93


def make_data(
    rng: np.random.Generator, n: int, shift: float = 1.0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    x1 = rng.beta(shift, 1.0, n)  # shift > 1 moves traffic towards x1 = 1, within the support
    x2 = rng.normal(0, 1, n)
    kind = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.5, 0.3, 0.2])
    y_pred = 10 * x1 + x2
    scale = 0.3 + 2.0 * x1 + np.where(kind == "c", 1.0, 0.0)
    y_true = y_pred + rng.normal(0, scale)
    return {"x1": x1, "x2": x2, "kind": kind}, y_true, y_pred


@pytest.fixture(scope="module")
def loss_model() -> LossModel:
    columns, y_true, y_pred = make_data(np.random.default_rng(2), 10_000)
    return fit_dle(columns, y_true, y_pred)


def test_loss_model_round_trips_and_reads_categories(loss_model: LossModel) -> None:
    assert loss_model.categories == {"kind": ("a", "b", "c")}
    restored = LossModel.from_bytes(loss_model.to_bytes())
    columns, _, y_pred = make_data(np.random.default_rng(3), 500)
    a1, s1 = loss_model.predict(columns, y_pred)
    a2, s2 = restored.predict(columns, y_pred)
    assert np.array_equal(a1, a2)
    assert np.array_equal(s1, s2)
    # an unseen category and a missing feature are read as missing values, not errors
    columns["kind"][:3] = ["zzz", None, "a"]
    del columns["x2"]
    assert dle_sums(loss_model, columns, y_pred).n == 500
    with pytest.raises(ValueError, match="LossModel"):
        LossModel.from_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ValueError, match="at least 100"):
        fit_dle({"x": np.ones(10)}, np.ones(10), np.ones(10))


def test_dle_is_unbiased_and_covers_the_realized_value() -> None:
    """Covariate shift moves traffic to where errors are larger; DLE follows it.

    Coverage is over references as well as windows: each reference's own noise
    is shared by every window read through its loss models.
    """
    rng = np.random.default_rng(4)
    errs: dict[str, list[float]] = {"mae": [], "rmse": []}
    hits = dict.fromkeys(errs, 0)
    windows = 0
    for _ in range(4):
        columns, y_true, y_pred = make_data(rng, 4000)
        model = fit_dle(columns, y_true, y_pred, seed=int(rng.integers(1000)))
        for w in range(40):
            columns, y_true, y_pred = make_data(rng, 1000, shift=1.0 + w % 4)
            half = 500  # two blocks per window
            est_sums = dle_sums(
                model, {k: v[:half] for k, v in columns.items()}, y_pred[:half]
            ) + dle_sums(model, {k: v[half:] for k, v in columns.items()}, y_pred[half:])
            real = labelled_regression(y_true, y_pred)
            windows += 1
            for name in errs:
                est, truth = metric(est_sums, name), metric(real, name)
                assert est is not None
                assert truth is not None
                errs[name].append((est.value - truth.value) / truth.value)
                hits[name] += est.ci_low <= truth.value <= est.ci_high
    for name in errs:
        assert abs(np.mean(errs[name])) < 0.02, (name, np.mean(errs[name]))
        assert hits[name] / windows >= 0.9, (name, hits[name], windows)
    restored = EstimatedRegression.from_json(json.loads(json.dumps(est_sums.to_json())))
    assert metric(restored, "mae") == metric(est_sums, "mae")


def _sparse_shift(
    rng: np.random.Generator, n: int, a: float, b: float
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    x1 = rng.beta(a, b, n)  # the reference has few records at large x1
    x2 = rng.normal(0, 1, n)
    y_pred = 10 * x1 + x2
    return {"x1": x1, "x2": x2}, y_pred + rng.normal(0, 0.5 + 2.0 * x1**2), y_pred


def test_dle_interval_covers_where_the_reference_was_sparse() -> None:
    """Traffic moves to inputs the reference had few of (Beta(1, 3) → up to Beta(4, 1.5)):
    there the loss models are least sure, and their error is shared by the whole window.
    The half-models' gap on the window's inputs widens the interval there; without it
    the RMSE's interval covers about 80% of windows."""
    rng = np.random.default_rng(11)
    windows = 0
    hits = {"with": {"mae": 0, "rmse": 0}, "without": {"mae": 0, "rmse": 0}}
    for _ in range(2):
        columns, y_true, y_pred = _sparse_shift(rng, 3000, 1.0, 3.0)
        model = fit_dle(columns, y_true, y_pred, seed=int(rng.integers(1000)))
        assert len(model.abs_folds) == 2 and len(model.sq_folds) == 2
        for w in range(60):
            columns, y_true, y_pred = _sparse_shift(rng, 1000, 1.0 + w % 4, 3.0 - 0.5 * (w % 4))
            sums = dle_sums(model, columns, y_pred)
            without = dataclasses.replace(sums, gap_abs=0.0, gap_sq=0.0)
            real = labelled_regression(y_true, y_pred)
            windows += 1
            for name in ("mae", "rmse"):
                truth = metric(real, name)
                assert truth is not None
                for label, s in (("with", sums), ("without", without)):
                    est = metric(s, name)
                    assert est is not None
                    hits[label][name] += est.ci_low <= truth.value <= est.ci_high
    for name in ("mae", "rmse"):
        assert hits["with"][name] / windows >= 0.9, (name, hits, windows)
    # the gap is what holds the coverage: without it the RMSE's interval falls short
    assert hits["without"]["rmse"] / windows <= 0.85, (hits, windows)
    assert hits["with"]["rmse"] - hits["without"]["rmse"] >= 10


def test_sums_stored_before_the_gaps_read_as_no_gap() -> None:
    """Blocks stored before the half-models' gaps were kept still read (gap 0)."""
    columns, y_true, y_pred = make_data(np.random.default_rng(5), 400)
    model = fit_dle(columns, y_true, y_pred)
    doc = dle_sums(model, columns, y_pred).to_json()
    old = {k: v for k, v in doc.items() if k not in ("gap_abs", "gap_sq")}
    restored = EstimatedRegression.from_json(old)
    assert restored.gap_abs == 0.0 and restored.gap_sq == 0.0
    both = EstimatedRegression.sum_json([old, doc])
    assert both.gap_abs == pytest.approx(doc["gap_abs"])
    legacy = dataclasses.replace(model, abs_folds=(), sq_folds=())
    assert legacy.fold_gaps(columns, y_pred) == (0.0, 0.0)
