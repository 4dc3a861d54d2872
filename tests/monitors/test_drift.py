"""The decision rule: significance after correction AND a calibrated effect floor."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitors.drift import Calibration, DriftConfig, calibrate, evaluate
from monitors.sketch import SketchSpec

NUMERICAL = [f"x{i}" for i in range(5)]
CATEGORICAL = ["plan", "country"]
KINDS = {**dict.fromkeys(NUMERICAL, "numerical"), **dict.fromkeys(CATEGORICAL, "categorical")}
PLANS = np.array(["free", "pro", "team", "enterprise"], dtype=object)
PLAN_P = [0.5, 0.3, 0.15, 0.05]
COUNTRIES = np.array(["fr", "de", "us", "jp", "br", "in"], dtype=object)
COUNTRY_P = [0.3, 0.25, 0.2, 0.1, 0.1, 0.05]


def table(
    rng: np.random.Generator,
    n: int,
    *,
    shift: float = 0.0,
    new_plan: float = 0.0,
) -> dict[str, np.ndarray]:
    """Seven features; ``shift`` moves x0 by that many σ; ``new_plan`` is the share of a new plan."""
    columns: dict[str, np.ndarray] = {
        name: rng.normal(shift if name == "x0" else 0.0, 1.0, n) for name in NUMERICAL
    }
    plan = PLANS[rng.choice(4, n, p=PLAN_P)]
    plan[rng.uniform(size=n) < new_plan] = "student"
    columns["plan"] = plan
    columns["country"] = COUNTRIES[rng.choice(6, n, p=COUNTRY_P)]
    return columns


@pytest.fixture(scope="module")
def reference() -> tuple[SketchSpec, np.ndarray]:
    data = table(np.random.default_rng(2024), 100_000)
    spec = SketchSpec.fit(data, KINDS)
    return spec, spec.count(data)


def false_alarms(spec: SketchSpec, ref: np.ndarray, rows: int, windows: int, seed: int) -> int:
    config = DriftConfig(min_rows=50)
    calibration = calibrate(spec, ref, window_rows=rows, config=config)
    rng = np.random.default_rng(seed)
    return sum(
        evaluate(
            spec, ref, spec.count(table(rng, rows)), config=config, calibration=calibration
        ).drifted
        for _ in range(windows)
    )


@pytest.mark.parametrize("rows", [100, 1_000])
def test_identical_small_windows_are_almost_never_flagged(reference, rows: int) -> None:
    spec, ref = reference
    assert false_alarms(spec, ref, rows, windows=100, seed=rows) <= 2  # <= 2%


@pytest.mark.parametrize(("rows", "windows"), [(10_000, 10), (100_000, 3)])
def test_identical_large_windows_are_not_flagged(reference, rows: int, windows: int) -> None:
    spec, ref = reference
    assert false_alarms(spec, ref, rows, windows=windows, seed=rows) == 0


def test_psi_alone_fires_on_identical_small_samples_but_not_once_calibrated(reference) -> None:
    spec, ref = reference
    rng = np.random.default_rng(9)
    fixed = DriftConfig(detectors=dict.fromkeys(NUMERICAL, "psi"), min_effect=0.1, min_rows=50)
    auto = DriftConfig(detectors=dict.fromkeys(NUMERICAL, "psi"), min_rows=50)
    calibration = calibrate(spec, ref, window_rows=100, config=auto)
    naive = calibrated = 0
    for _ in range(20):
        counts = spec.count(table(rng, 100))
        naive += evaluate(spec, ref, counts, config=fixed, names=["x1"]).drifted
        calibrated += evaluate(
            spec, ref, counts, config=auto, calibration=calibration, names=["x1"]
        ).drifted
    assert naive == 20
    assert calibrated == 0


def test_tiny_shift_at_100k_rows_is_significant_but_not_drift(reference) -> None:
    spec, ref = reference
    window = spec.count(table(np.random.default_rng(3), 100_000, shift=0.02))
    result = evaluate(spec, ref, window, config=DriftConfig())
    x0 = result.feature("x0")
    assert x0.p_value is not None
    assert x0.p_value < 0.01
    assert x0.effect is not None
    assert x0.effect < x0.threshold == pytest.approx(0.1)
    assert result.status == "ok"
    assert not result.drifted


def test_half_sigma_shift_at_1k_rows_is_flagged(reference) -> None:
    spec, ref = reference
    hits = 0
    for seed in range(5):
        window = spec.count(table(np.random.default_rng(seed), 1_000, shift=0.5))
        result = evaluate(spec, ref, window, config=DriftConfig())
        hits += result.feature("x0").drifted
        assert [f.name for f in result.features if f.drifted] in ([], ["x0"])
    assert hits == 5


def test_new_category_is_flagged(reference) -> None:
    spec, ref = reference
    window = spec.count(table(np.random.default_rng(4), 2_000, new_plan=0.1))
    result = evaluate(spec, ref, window, config=DriftConfig())
    plan = result.feature("plan")
    assert plan.drifted
    assert plan.detector == "chi2"
    assert plan.effect_measure == "jensen_shannon"
    assert result.status == "drift"


def test_small_window_is_insufficient_data_never_drift(reference) -> None:
    spec, ref = reference
    window = spec.count(table(np.random.default_rng(5), 150, shift=3.0))
    result = evaluate(spec, ref, window, config=DriftConfig(min_rows=200))
    assert result.status == "insufficient_data"
    assert not result.drifted
    assert result.rows == 150
    assert result.reference_rows == 100_000
    assert all(f.statistic is None and not f.drifted for f in result.features)


def test_missing_values_are_reported_not_folded(reference) -> None:
    spec, ref = reference
    data = table(np.random.default_rng(6), 2_000)
    data["x1"][:500] = np.nan
    data["plan"][:1_990] = None
    result = evaluate(spec, ref, spec.count(data), config=DriftConfig())
    x1, plan = result.feature("x1"), result.feature("plan")
    assert x1.missing_fraction == 0.25
    assert x1.reference_missing_fraction == 0.0
    assert x1.rows == 1_500
    assert not x1.drifted
    assert plan.rows == 10
    assert plan.statistic is None
    assert not result.drifted


def test_correction_across_features(reference) -> None:
    spec, ref = reference
    window = spec.count(table(np.random.default_rng(7), 1_000, shift=0.3))
    bh = evaluate(spec, ref, window, config=DriftConfig())
    bonf = evaluate(spec, ref, window, config=DriftConfig(correction="bonferroni"))
    for f_bh, f_bonf in zip(bh.features, bonf.features, strict=True):
        assert f_bh.p_value == f_bonf.p_value
        assert f_bh.adjusted_p_value is not None
        assert f_bonf.adjusted_p_value is not None
        assert f_bh.adjusted_p_value <= f_bonf.adjusted_p_value
    x0 = bonf.feature("x0")
    assert x0.p_value is not None
    assert x0.adjusted_p_value == pytest.approx(min(1.0, 7 * x0.p_value))
    only = evaluate(spec, ref, window, config=DriftConfig(correction="bonferroni"), names=["x0"])
    assert only.feature("x0").adjusted_p_value == pytest.approx(x0.p_value)
    assert [f.name for f in only.features] == ["x0"]


def test_distance_detectors_and_fixed_thresholds(reference) -> None:
    spec, ref = reference
    window = spec.count(table(np.random.default_rng(8), 5_000, shift=0.3))
    config = DriftConfig(
        detectors={"x0": "wasserstein", "x1": "psi", "plan": "jensen_shannon"},
        min_effect={"x0": 0.25},
    )
    result = evaluate(spec, ref, window, config=config)
    x0 = result.feature("x0")
    assert x0.detector == "wasserstein"
    assert x0.p_value is None
    assert x0.adjusted_p_value is None
    assert x0.threshold == 0.25
    assert x0.drifted
    assert result.feature("x1").threshold is not None
    assert not result.feature("x1").drifted
    high = evaluate(spec, ref, window, config=DriftConfig(min_effect=0.5))
    assert not high.drifted
    assert high.feature("x0").threshold == 0.5


def test_calibration_shrinks_with_window_size_and_round_trips(reference) -> None:
    spec, ref = reference
    config = DriftConfig()
    small = calibrate(spec, ref, window_rows=100, config=config, n_simulations=100)
    large = calibrate(spec, ref, window_rows=10_000, config=config, n_simulations=100)
    for name in spec.names:
        q_small, q_large = small.feature(name), large.feature(name)
        assert q_small is not None
        assert q_large is not None
        assert q_small.quantile > 3 * q_large.quantile
        assert len(q_small.null) == 100
        assert list(q_small.null) == sorted(q_small.null)
    again = Calibration.from_dict(json.loads(json.dumps(small.to_dict(), allow_nan=False)))
    assert again == small
    # Deterministic for a seed, and each feature's stream is independent of the others.
    subset = calibrate(spec, ref, window_rows=100, config=config, n_simulations=100, names=["x3"])
    assert subset.feature("x3") == small.feature("x3")


def test_calibration_must_match_the_config(reference) -> None:
    spec, ref = reference
    window = spec.count(table(np.random.default_rng(10), 1_000))
    calibration = calibrate(spec, ref, window_rows=1_000, config=DriftConfig(), names=["x0"])
    with pytest.raises(ValueError, match="does not cover feature 'x1'"):
        evaluate(spec, ref, window, config=DriftConfig(), calibration=calibration)
    with pytest.raises(ValueError, match="alpha"):
        evaluate(
            spec, ref, window, config=DriftConfig(alpha=0.05), calibration=calibration, names=["x0"]
        )
    psi_config = DriftConfig(detectors={"x0": "psi"})
    with pytest.raises(ValueError, match="recalibrate"):
        evaluate(spec, ref, window, config=psi_config, calibration=calibration, names=["x0"])


def test_calibration_is_rescaled_to_the_window_size(reference) -> None:
    spec, ref = reference
    config = DriftConfig(detectors={"x0": "psi"})
    calibration = calibrate(spec, ref, window_rows=400, config=config, names=["x0"])
    window = spec.count(table(np.random.default_rng(11), 800))
    result = evaluate(spec, ref, window, config=config, calibration=calibration, names=["x0"])
    calibrated = calibration.feature("x0")
    assert calibrated is not None
    assert result.feature("x0").threshold == pytest.approx(max(0.1, calibrated.quantile / 2))


def test_results_are_json_safe(reference) -> None:
    spec, ref = reference
    window = spec.count(table(np.random.default_rng(12), 500, shift=1.0))
    data = evaluate(spec, ref, window, config=DriftConfig()).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["status"] == "drift"
    for feature in data["features"]:
        for value in feature.values():
            assert value is None or type(value) in (str, bool, int, float)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"correction": "holm"}, "correction"),
        ({"min_effect": -0.1}, "min_effect"),
        ({"min_effect": {"x0": float("nan")}}, "min_effect"),
        ({"min_rows": 0}, "min_rows"),
        ({"detectors": {"x0": "nope"}}, "unknown detector"),
    ],
)
def test_config_is_validated(kwargs: dict, message: str) -> None:
    with pytest.raises((ValueError, KeyError), match=message):
        DriftConfig(**kwargs)


def test_config_round_trip_and_kind_check(reference) -> None:
    spec, ref = reference
    config = DriftConfig(detectors={"plan": "ks"}, min_effect={"x0": 0.2}, alpha=0.05)
    assert DriftConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="does not apply to categorical"):
        evaluate(spec, ref, ref, config=config)
    with pytest.raises(ValueError, match="unknown drift settings"):
        DriftConfig.from_dict({"alpha": 0.01, "beta": 1})


def test_bad_counts_and_names_are_rejected(reference) -> None:
    spec, ref = reference
    with pytest.raises(ValueError, match="shape"):
        evaluate(spec, ref, ref[:-1], config=DriftConfig())
    with pytest.raises(KeyError, match="unknown features"):
        evaluate(spec, ref, ref, config=DriftConfig(), names=["nope"])
    with pytest.raises(ValueError, match="non-negative integers"):
        evaluate(spec, ref, ref * 0.5, config=DriftConfig())
