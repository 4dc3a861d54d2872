"""Detectors: golden values against scipy on the same data, and statistical properties.

Tolerances, stated once:

* binned KS: ``0 <= D_exact - D_binned <= max bin mass (reference) + max bin
  mass (window)`` — the CDFs are read only at bin edges; the p-value from the
  binned ``D`` stays within one order of magnitude of ``ks_2samp``'s;
* chi-square, G-test, Jensen–Shannon: equal to scipy to 1e-9 (no binning involved);
* Wasserstein: within 0.02 reference σ of ``scipy.stats.wasserstein_distance``
  on the raw samples, with 256 quantile bins.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitors.detectors import (
    AUTO,
    available,
    chi2,
    get_detector,
    gtest,
    jensen_shannon,
    ks,
    psi,
    wasserstein,
)
from monitors.detectors.ks import EXACT_UP_TO, p_value
from monitors.sketch import SketchSpec


def binned(reference: np.ndarray, window: np.ndarray, n_bins: int = 256):
    spec = SketchSpec.fit({"x": reference}, {"x": "numerical"}, n_bins=n_bins)
    r, _ = spec.split("x", spec.count({"x": reference}))
    w, _ = spec.split("x", spec.count({"x": window}))
    return r, w, np.asarray(spec.feature("x").edges)


@pytest.mark.parametrize(
    ("shift", "scale", "n_ref", "n_win"),
    [
        (0.0, 1.0, 20_000, 1_000),
        (0.1, 1.0, 20_000, 5_000),
        (0.3, 1.0, 5_000, 500),
        (0.0, 1.5, 20_000, 3_000),
    ],
)
def test_binned_ks_against_scipy(shift: float, scale: float, n_ref: int, n_win: int) -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=n_ref)
    y = rng.normal(shift, scale, size=n_win)
    r, w, edges = binned(x, y)
    result = ks(r, w, edges)
    exact = stats.ks_2samp(x, y, method="asymp")
    tolerance = r.max() / r.sum() + w.max() / w.sum()
    assert 0.0 <= exact.statistic - result.statistic <= tolerance
    assert result.p_value is not None
    if exact.pvalue > 1e-12:
        assert abs(math.log10(result.p_value) - math.log10(exact.pvalue)) <= 1.0
    # Same statistic, same distribution: our p-value is scipy's asymptotic one.
    n_e = round(n_ref * n_win / (n_ref + n_win))
    assert p_value(result.statistic, n_ref, n_win) == pytest.approx(
        float(stats.kstwo.sf(result.statistic, n_e)), rel=0.06, abs=1e-14
    )


@pytest.mark.parametrize("n", [500, EXACT_UP_TO + 1, 30_000, 200_000])
def test_ks_p_value_approximation_matches_kstwo(n: int) -> None:
    for z in (0.5, 1.0, 1.5, 2.0):  # p from 0.96 down to 7e-4
        d = z / math.sqrt(n)
        assert p_value(d, n * 2, n * 2) == pytest.approx(float(stats.kstwo.sf(d, n)), rel=0.015)


def categorical_counts(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = rng.multinomial(5000, [0.4, 0.3, 0.2, 0.1, 0.0])
    w = rng.multinomial(800, [0.35, 0.3, 0.2, 0.1, 0.05])
    return r, w


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chi2_and_gtest_against_scipy(seed: int) -> None:
    r, w = categorical_counts(seed)
    table = np.array([r, w])
    table = table[:, table.sum(axis=0) > 0]
    pearson = stats.chi2_contingency(table, correction=False)
    g = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
    ours, ours_g = chi2(r, w), gtest(r, w)
    assert ours.statistic == pytest.approx(pearson.statistic, rel=1e-9)
    assert ours.p_value == pytest.approx(pearson.pvalue, rel=1e-9, abs=1e-300)
    assert ours_g.statistic == pytest.approx(g.statistic, rel=1e-9)
    assert ours_g.p_value == pytest.approx(g.pvalue, rel=1e-9, abs=1e-300)


def test_new_category_in_the_window_is_significant_and_large() -> None:
    result = chi2([400, 300, 300, 0], [360, 270, 270, 100])
    assert result.p_value is not None
    assert result.p_value < 1e-20
    assert result.drifted


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jensen_shannon_against_scipy(seed: int) -> None:
    r, w = categorical_counts(seed)
    expected = jensenshannon(r / r.sum(), w / w.sum(), base=2)
    assert jensen_shannon(r, w).effect == pytest.approx(expected, rel=1e-9)
    assert chi2(r, w).effect == pytest.approx(expected, rel=1e-9)


def test_psi_is_the_symmetrised_kl_divergence() -> None:
    r, w = np.array([400, 300, 200, 100]), np.array([300, 300, 250, 150])
    p, q = r / r.sum(), w / w.sum()
    expected = stats.entropy(p, q) + stats.entropy(q, p)
    assert psi(r, w).statistic == pytest.approx(expected, rel=1e-12)
    assert psi(r, r).statistic == 0.0
    assert math.isfinite(psi([10, 10, 0], [10, 10, 5]).statistic)  # empty cell floored


@pytest.mark.parametrize(
    ("shift", "scale"), [(0.0, 1.0), (0.2, 1.0), (0.5, 1.0), (0.0, 1.5), (-0.3, 0.7)]
)
def test_wasserstein_against_scipy(shift: float, scale: float) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(10.0, 3.0, size=20_000)
    y = rng.normal(10.0 + 3.0 * shift, 3.0 * scale, size=5_000)
    r, w, edges = binned(x, y)
    result = wasserstein(r, w, edges)
    exact = stats.wasserstein_distance(x, y)
    assert result.statistic == pytest.approx(exact, abs=0.02 * x.std())
    assert result.effect == pytest.approx(exact / x.std(), abs=0.02)
    assert ks(r, w, edges).effect == result.effect  # KS reports the same effect


def test_wasserstein_is_a_lower_bound_when_mass_leaves_the_reference_range() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=20_000), rng.normal(0.0, 3.0, size=5_000)
    r, w, edges = binned(x, y)
    exact = stats.wasserstein_distance(x, y)
    assert 0.8 * exact < wasserstein(r, w, edges).statistic <= exact


def test_wasserstein_of_a_constant_reference_is_the_moved_fraction() -> None:
    r, w, edges = binned(np.full(1000, 2.0), np.array([2.0] * 70 + [5.0] * 30))
    assert wasserstein(r, w, edges).effect == pytest.approx(0.3)


def test_registry_and_auto_choice() -> None:
    assert AUTO == {"numerical": "ks", "categorical": "chi2"}
    assert available("numerical") == ("chi2", "gtest", "jensen_shannon", "ks", "psi", "wasserstein")
    assert get_detector("ks").has_p_value
    assert not get_detector("psi").has_p_value
    with pytest.raises(KeyError, match="unknown detector"):
        get_detector("nope")
    with pytest.raises(ValueError, match="bin edges"):
        get_detector("ks")([1, 2, 3], [3, 2, 1])
    with pytest.raises(ValueError, match="empty distribution"):
        chi2([0, 0], [1, 1])


def test_a_test_borrows_the_effect_of_its_paired_distance() -> None:
    for test, distance in (
        ("ks", "wasserstein"),
        ("chi2", "jensen_shannon"),
        ("gtest", "jensen_shannon"),
    ):
        t, d = get_detector(test), get_detector(distance)
        assert (t.effect, t.effect_name, t.threshold, t.needs_edges) == (
            d.effect,
            d.effect_name,
            d.threshold,
            d.needs_edges,
        )
        assert t.has_p_value and not d.has_p_value
    assert (chi2, gtest, ks, psi) == tuple(get_detector(n) for n in ("chi2", "gtest", "ks", "psi"))


def test_a_test_needs_significance_as_well_as_effect() -> None:
    # Large effect on a tiny sample: not significant, so not drifted.
    assert not chi2([5, 5, 0], [1, 0, 1]).drifted
    assert chi2([5, 5, 0], [1, 0, 1]).effect > 0.1


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_win=st.integers(300, 5_000),
    dist=st.sampled_from(["normal", "lognormal", "exponential", "integers"]),
)
def test_same_distribution_gives_a_small_statistic(seed: int, n_win: int, dist: str) -> None:
    rng = np.random.default_rng(seed)

    def draw(n: int) -> np.ndarray:
        if dist == "normal":
            return rng.normal(size=n)
        if dist == "lognormal":
            return rng.lognormal(size=n)
        if dist == "exponential":
            return rng.exponential(size=n)
        return rng.integers(0, 20, size=n).astype(float)

    n_ref = 20_000
    r, w, edges = binned(draw(n_ref), draw(n_win))
    result = ks(r, w, edges)
    # KS bound at p = 1e-6: chance alone exceeds it essentially never.
    bound = math.sqrt(-math.log(0.5e-6) / 2.0) * math.sqrt((n_ref + n_win) / (n_ref * n_win))
    assert result.statistic <= bound
    assert result.effect < 4.0 / math.sqrt(n_win)  # sampling noise only
    assert not result.drifted


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    shifts=st.lists(st.floats(0.0, 3.0), min_size=2, max_size=6),
    scale=st.floats(0.1, 100.0),
)
def test_growing_shift_gives_a_non_decreasing_effect(
    seed: int, shifts: list[float], scale: float
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, scale, size=5_000)
    spec = SketchSpec.fit({"x": x}, {"x": "numerical"})
    r, _ = spec.split("x", spec.count({"x": x}))
    edges = np.asarray(spec.feature("x").edges)
    effects, distances = [], []
    for s in sorted(shifts):
        w, _ = spec.split("x", spec.count({"x": x + s * scale}))
        result = ks(r, w, edges)
        effects.append(result.effect)
        distances.append(result.statistic)
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(effects))
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(distances))


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_growing_shift_of_an_independent_sample(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r, _, edges = binned(rng.normal(size=20_000), rng.normal(size=10))
    effects = []
    y = rng.normal(size=20_000)
    for s in (0.0, 0.1, 0.2, 0.3, 0.5, 1.0):
        _, w, _ = binned(rng.normal(size=20_000), y + s)
        effects.append(wasserstein(r, w, edges).effect)
    assert all(b > a for a, b in itertools.pairwise(effects))
    assert effects[-2] == pytest.approx(0.5, abs=0.03)
