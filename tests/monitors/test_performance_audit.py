"""Audited accuracy: stratified Horvitz–Thompson (Hájek) from reviewers' labels.

The simulation of issue 15: 1,000 windows with a known true accuracy, a flagged
stratum (every record ticketed, or fewer when the hourly budget suppressed some)
and a 2% audit of the rest. The audited 95% interval must cover the window's
true accuracy in at least 93% of them with a bias within half a point, while
the plain accuracy of the same labels is far off.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binomtest

from monitors.performance import (
    AuditSums,
    audit_classification,
    audit_population,
    audit_regression,
    disagree,
    metric,
)
from monitors.performance.estimate import Estimate


def simulate_window(rng: np.random.Generator, n: int = 5000) -> tuple[float, AuditSums, float]:
    """One window: returns the true accuracy, the audit sums and the labels' plain accuracy."""
    flagged = rng.uniform(size=n) < rng.uniform(0.05, 0.2)  # the model's hard cases
    p_right = np.where(flagged, rng.uniform(0.35, 0.7), rng.uniform(0.9, 0.99))
    correct = rng.uniform(size=n) < p_right
    # two hours: the budget let all flagged tickets through in one, a share in the other
    hour = rng.uniform(size=n) < 0.5
    budget_share = rng.choice([1.0, 0.6, 0.3])
    audit_rate = np.where(hour, 0.02, rng.choice([0.02, 0.05]))  # the audit rate changed too
    pi = np.where(flagged, np.where(hour, 1.0, budget_share), audit_rate)
    labelled = rng.uniform(size=n) < pi
    # reviewers get through most, not all, of their tickets (at random within a stratum)
    labelled &= rng.uniform(size=n) < 0.9
    strata = np.where(flagged, "flagged", "unflagged")
    population = audit_population(strata)
    labels = audit_classification(
        strata=strata[labelled],
        inclusion=pi[labelled],
        labels=np.where(correct[labelled], "cat", "dog"),
        predicted=np.full(int(labelled.sum()), "cat"),
    )
    naive = float(correct[labelled].mean())
    return float(correct.mean()), population + labels, naive


def test_audited_accuracy_is_unbiased_and_covers_the_truth() -> None:
    rng = np.random.default_rng(2026)
    windows = 1000
    truth, values, hits, naive, labels = [], [], 0, [], []
    for _ in range(windows):
        true_acc, sums, plain = simulate_window(rng)
        est = metric(sums, "accuracy")
        assert est is not None
        assert est.ci_low is not None
        assert est.ci_high is not None
        truth.append(true_acc)
        values.append(est.value)
        hits += est.ci_low <= true_acc <= est.ci_high
        naive.append(plain)
        labels.append(est.n)
    coverage = hits / windows
    bias = float(np.mean(np.subtract(values, truth)))
    naive_bias = float(np.mean(np.subtract(naive, truth)))
    assert coverage >= 0.93, coverage
    assert abs(bias) <= 0.005, bias
    # the reviewers' labels, unweighted, say the model is much worse than it is
    assert naive_bias < -0.15, naive_bias
    assert 300 < np.mean(labels) < 800


def test_hand_computed_values() -> None:
    population = audit_population(["f"] * 10 + ["u"] * 90)
    labels = audit_classification(
        strata=["f"] * 5 + ["u"] * 9,
        inclusion=[0.5] * 5 + [0.1] * 9,
        labels=["x"] * 14,
        predicted=["x", "x", "x", "y", "y"] + ["x"] * 7 + ["y"] * 2,
    )
    sums = population + labels
    est = metric(sums, "accuracy")
    assert est is not None
    # flagged: 3/5 right; unflagged: 7/9; 0.1 × 0.6 + 0.9 × 7/9
    assert est.value == pytest.approx(0.76)
    # Design factors f_h = V_h / ȳ_h(1-ȳ_h), V_h = n/(n-1) Σ (1-π)/π² (y - ȳ)² / N_h²
    # (every ticket labelled: Σ 1/π = N_h in both strata)
    f_f = 5 / 4 * (2 * 3 * 0.4**2 + 2 * 2 * 0.6**2) / 100 / (0.6 * 0.4)
    q = 7 / 9
    f_u = 9 / 8 * 90 * (7 * (1 - q) ** 2 + 2 * q**2) / 8100 / (q * (1 - q))
    z = 1.959963984540054
    assert est.ci_low is not None
    assert est.ci_high is not None
    for theta in (est.ci_low, est.ci_high):
        p_f, p_u = 0.6 + theta - 0.76, q + theta - 0.76
        v = 0.01 * f_f * p_f * (1 - p_f) + 0.81 * f_u * p_u * (1 - p_u)
        assert (0.76 - theta) ** 2 == pytest.approx(z * z * v, rel=1e-6)
    assert est.ci_low < 0.76 < est.ci_high
    assert est.n == 14
    assert labels.unweighted_accuracy() == pytest.approx(10 / 14)


def test_one_stratum_of_a_simple_random_sample_gives_wilson() -> None:
    # 10 of 100 records drawn with π = 0.1, 7 right: the finite-population factor
    # (1 − f) and the small-sample factor n/(n − 1) cancel, leaving Wilson's interval
    sums = audit_population(["u"] * 100) + audit_classification(
        ["u"] * 10, [0.1] * 10, ["x"] * 10, ["x"] * 7 + ["y"] * 3
    )
    est = metric(sums, "accuracy")
    assert est is not None
    assert est.value == pytest.approx(0.7)
    low, high = binomtest(7, 10).proportion_ci(method="wilson")
    assert est.ci_low == pytest.approx(low, abs=1e-9)
    assert est.ci_high == pytest.approx(high, abs=1e-9)


def test_no_estimate_until_every_populated_stratum_has_labels() -> None:
    population = audit_population(["f"] * 10 + ["u"] * 90)
    only_flagged = audit_classification(["f"], [1.0], ["x"], ["x"])
    assert metric(population + only_flagged, "accuracy") is None
    assert metric(AuditSums.empty(), "accuracy") is None
    assert metric(population + only_flagged, "f1") is None


def test_sums_add_subtract_and_survive_json() -> None:
    population = audit_population(["f", "u", "u", "u"])
    first = audit_classification(["u"], [0.5], ["x"], ["y"])
    second = audit_classification(["u"], [0.5], ["x"], ["x"])
    flagged = audit_classification(["f"], [1.0], ["x"], ["x"])
    window = sum([population, first, flagged], AuditSums.empty())
    # an adjudication replaces the first label
    adjudicated = window - first + second
    restored = AuditSums.from_json(json.loads(json.dumps(adjudicated.to_json())))
    est = metric(restored, "accuracy")
    assert est is not None
    assert est.value == pytest.approx(1.0)
    assert restored.labels == 2
    assert restored.population == 4


def test_bad_inclusion_probabilities_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        audit_classification(["u"], [0.0], ["x"], ["x"])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        audit_classification(["u"], [1.5], ["x"], ["x"])
    with pytest.raises(ValueError, match="inclusion probabilities for"):
        audit_classification(["u", "u"], [0.5], ["x", "x"], ["x", "x"])
    with pytest.raises(ValueError, match="kind"):
        AuditSums.from_json({"kind": "labelled_regression"})


def test_audited_regression_is_unbiased() -> None:
    rng = np.random.default_rng(7)
    maes, truths, hits = [], [], 0
    for _ in range(300):
        n = 4000
        flagged = rng.uniform(size=n) < 0.1
        e = rng.normal(0, np.where(flagged, 5.0, 1.0))
        pi = np.where(flagged, 1.0, 0.05)
        take = rng.uniform(size=n) < pi
        strata = np.where(flagged, "f", "u")
        sums = audit_population(strata) + audit_regression(
            strata[take], pi[take], np.zeros(take.sum()), e[take]
        )
        est = metric(sums, "mae")
        assert est is not None
        maes.append(est.value)
        truths.append(np.abs(e).mean())
        hits += est.ci_low <= truths[-1] <= est.ci_high
        assert metric(sums, "rmse") is not None
    assert abs(np.mean(np.subtract(maes, truths))) < 0.01
    assert hits / 300 >= 0.92


def test_disagree_compares_independent_estimates() -> None:
    realized = Estimate(0.80, 0.78, 0.82, 1000)
    assert disagree(realized, Estimate(0.90, 0.89, 0.91, 5000))
    assert not disagree(realized, Estimate(0.815, 0.80, 0.83, 5000))
    assert not disagree(None, realized)
    assert not disagree(realized, Estimate(0.1, None, None, 10))
