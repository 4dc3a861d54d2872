"""The value sampler: probabilities that sum to the budget, and unbiased estimates."""

from __future__ import annotations

import numpy as np
import pytest

from monitors.sampling import (
    diversity_groups,
    drift_affinity,
    horvitz_thompson,
    inclusion_probabilities,
    novelty,
    pivotal_sample,
    poisson_sample,
    record_value,
    uncertainty,
)


def population(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Values from a skewed mix of uncertainties, and a 0/1 'model was wrong' per record."""
    rng = np.random.default_rng(seed)
    conf = rng.beta(5, 2, n) * 0.5 + 0.5
    wrong = (rng.random(n) > conf).astype(float)  # less confident, more often wrong
    v = record_value(uncertainty=uncertainty(conf))
    return v, wrong


@pytest.mark.parametrize("budget", [1.0, 7.5, 40.0, 399.0])
def test_probabilities_sum_to_the_budget(budget: float) -> None:
    v, _ = population(1)
    pi = inclusion_probabilities(v, budget)
    assert pi.sum() == pytest.approx(budget)
    assert np.all((pi > 0) & (pi <= 1))
    # proportional to value where below 1
    free = pi < 1
    ratio = pi[free] / v[free]
    assert np.allclose(ratio, ratio[0])
    # and a record with more value never has less probability
    order = np.argsort(v)
    assert np.all(np.diff(pi[order]) >= -1e-12)


def test_heavy_values_are_taken_for_certain_and_the_rest_shared() -> None:
    pi = inclusion_probabilities([100.0, 50.0, 1.0, 1.0, 2.0], 3.0)
    assert pi.tolist()[:2] == [1.0, 1.0]
    assert pi[2:] == pytest.approx([0.25, 0.25, 0.5])


def test_sample_sizes_match_the_budget() -> None:
    v, _ = population(2)
    pi = inclusion_probabilities(v, 30.0)
    rng = np.random.default_rng(3)
    poisson_sizes = [poisson_sample(pi, rng).sum() for _ in range(2000)]
    # Poisson sampling: the size is the budget in expectation (sd √Σπ(1−π) ≈ 5)
    assert np.mean(poisson_sizes) == pytest.approx(30.0, abs=0.4)
    pivotal_sizes = {int(pivotal_sample(pi, rng).sum()) for _ in range(200)}
    assert pivotal_sizes == {30}


@pytest.mark.parametrize("method", ["poisson", "pivotal"])
def test_each_record_is_drawn_with_its_probability(method: str) -> None:
    v, _ = population(4, n=60)
    pi = inclusion_probabilities(v, 12.0)
    draw = poisson_sample if method == "poisson" else pivotal_sample
    rng = np.random.default_rng(5)
    reps = 6000
    hits = np.zeros_like(pi)
    for _ in range(reps):
        hits += draw(pi, rng)
    se = np.sqrt(pi * (1 - pi) / reps) + 1e-9
    z = (hits / reps - pi) / se
    assert np.max(np.abs(z)) < 4.5  # 60 records: no |z| this large by chance


@pytest.mark.parametrize("method", ["poisson", "pivotal"])
def test_horvitz_thompson_total_is_unbiased(method: str) -> None:
    v, wrong = population(6)
    truth = wrong.sum()
    pi = inclusion_probabilities(v, 40.0)
    draw = poisson_sample if method == "poisson" else pivotal_sample
    rng = np.random.default_rng(7)
    estimates, covered = [], []
    for _ in range(1500):
        s = draw(pi, rng)
        total, var = horvitz_thompson(wrong[s], pi[s])
        estimates.append(total)
        half = 1.96 * np.sqrt(var)
        covered.append(total - half <= truth <= total + half)
    est = np.asarray(estimates)
    se_of_mean = est.std() / np.sqrt(est.size)
    assert abs(est.mean() - truth) < 4 * se_of_mean
    if method == "poisson":  # the variance formula is Poisson sampling's
        # a Wald interval on a skewed total of ~40 draws: close to, a little under, 95%
        assert 0.88 <= np.mean(covered) <= 0.99


def test_uniform_sampling_would_be_unbiased_too_but_value_sampling_finds_more_errors() -> None:
    v, wrong = population(8)
    pi_value = inclusion_probabilities(v, 40.0)
    pi_uniform = np.full(v.size, 40.0 / v.size)
    # expected number of the model's mistakes among the labelled records
    assert (pi_value * wrong).sum() > 1.2 * (pi_uniform * wrong).sum()


def test_diversity_makes_near_identical_records_count_once() -> None:
    binned = np.array([[1, 1]] * 50 + [[2, 3], [4, 5]])
    groups = diversity_groups(binned)
    v = record_value(uncertainty=np.full(52, 0.8), groups=groups)
    pi = inclusion_probabilities(v, 3.0)
    # the fifty copies together weigh what one distinct record weighs
    assert pi[:50].sum() == pytest.approx(pi[50], rel=1e-9)
    assert pi[50] == pi[51]


def test_novelty_and_drift_raise_value() -> None:
    nov = novelty([[0.5], [3.0]], [0.0], [1.0])
    aff = drift_affinity([0, 1], [90, 10], [50, 50])
    v = record_value(uncertainty=[0.2, 0.2], novelty=nov, drift=aff)
    assert v[1] > v[0]
    assert nov.tolist() == [0.0, 1.0]
    assert aff[0] == 0.0 and aff[1] == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: inclusion_probabilities([1.0, 0.0], 1.0), "values"),
        (lambda: inclusion_probabilities([1.0, np.nan], 1.0), "values"),
        (lambda: inclusion_probabilities([1.0], -1.0), "budget"),
        (lambda: record_value(uncertainty=[0.1], floor=0.0), "floor"),
        (lambda: poisson_sample([1.5], np.random.default_rng(0)), "probabilities"),
        (lambda: horvitz_thompson([1.0], [0.0]), "probability 0"),
        (lambda: drift_affinity([3], [1, 1], [1, 1]), "outside"),
    ],
)
def test_bad_input_is_refused(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
