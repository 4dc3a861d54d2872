"""Data for the drift benchmarks: a 25-feature synthetic table with known shifts, and a real set.

* ``synthetic(rng, n, shift)``: 20 numerical features of varied shapes (normal,
  skewed, heavy-tailed, integer-valued, one with 5% missing) and 5 categorical
  ones (3 to 12 categories, one with 2% missing). A :class:`Shift` moves every
  numerical feature's mean by a multiple of its σ, scales its spread, re-weights
  every categorical feature, or gives a share of rows a category never seen.
* ``breast_cancer(rng, n, malignant)``: rows resampled from scikit-learn's
  bundled Wisconsin breast cancer set (569 rows, 30 numerical features) at a
  chosen share of malignant tumours — a subpopulation shift on real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_NUMERICAL = 20
CATEGORIES = {
    "plan": ["free", "basic", "pro", "team", "enterprise"],
    "channel": ["web", "app", "store"],
    "country": ["fr", "de", "us", "gb", "jp", "br", "in", "es"],
    "device": ["ios", "android", "windows", "mac", "linux", "other_os"],
    "segment": [f"s{i:02d}" for i in range(12)],
}
NUMERICAL = [f"num_{i:02d}" for i in range(N_NUMERICAL)]
CATEGORICAL = list(CATEGORIES)
KINDS: dict[str, str] = {
    **dict.fromkeys(NUMERICAL, "numerical"),
    **dict.fromkeys(CATEGORICAL, "categorical"),
}


def _weights(k: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** 0.8  # Zipf-like: a few common, a tail of rare
    return w / w.sum()


@dataclass(frozen=True)
class Shift:
    """A known change of the synthetic table (the defaults: no drift).

    Numerical changes apply to the first ``n_numerical`` numerical features,
    categorical ones to the first ``n_categorical`` categorical features.
    """

    mean_sigma: float = 0.0  # the mean moves by this many reference σ
    scale: float = 1.0  # the spread around the reference mean is multiplied by this
    reweight: float = 0.0  # category weights move this far towards their reversed order
    new_category: float = 0.0  # share of rows given a category never seen
    n_numerical: int = 1
    n_categorical: int = 1


# The reference mean and σ of each numerical feature (from a large draw), for shifts.
_MOMENTS: dict[int, tuple[float, float]] = {}


def _numerical(rng: np.random.Generator, i: int, n: int) -> np.ndarray:
    kind = i % 5
    if kind == 0:
        return rng.normal(10.0 * i, 1.0 + i, n)
    if kind == 1:
        return rng.lognormal(0.0, 0.6, n)
    if kind == 2:
        return rng.standard_t(5, n) * 3.0
    if kind == 3:
        return rng.poisson(4.0, n).astype(np.float64)  # integer-valued: heavy ties
    return rng.exponential(2.0, n)


def _moments(i: int) -> tuple[float, float]:
    if i not in _MOMENTS:
        x = _numerical(np.random.default_rng(10_000 + i), i, 400_000)
        _MOMENTS[i] = (float(np.mean(x)), float(np.std(x)))
    return _MOMENTS[i]


def synthetic(rng: np.random.Generator, n: int, shift: Shift = Shift()) -> dict[str, np.ndarray]:
    """``n`` rows of the 25-feature table, as the service receives them (NaN / None missing)."""
    columns: dict[str, np.ndarray] = {}
    for i, name in enumerate(NUMERICAL):
        x = _numerical(rng, i, n)
        if i < shift.n_numerical:
            mean, sigma = _moments(i)
            x = mean + (x - mean) * shift.scale + shift.mean_sigma * sigma
        if i == 7:
            x[rng.uniform(size=n) < 0.05] = np.nan
        columns[name] = x
    for j, (name, labels) in enumerate(CATEGORIES.items()):
        k = len(labels)
        hit = j < shift.n_categorical
        weight = shift.reweight if hit else 0.0
        p = (1.0 - weight) * _weights(k) + weight * _weights(k)[::-1]
        values = np.array(labels, dtype=object)[rng.choice(k, n, p=p)]
        if hit and shift.new_category > 0:
            values[rng.uniform(size=n) < shift.new_category] = f"new_{name}"
        if name == "device":
            values[rng.uniform(size=n) < 0.02] = None
        columns[name] = values
    return columns


class BreastCancer:
    """Rows resampled from scikit-learn's Wisconsin breast cancer set at a chosen class mix."""

    def __init__(self) -> None:
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer()
        self.names = [str(n).replace(" ", "_") for n in data.feature_names]
        self.kinds: dict[str, str] = dict.fromkeys(self.names, "numerical")
        self.x = np.asarray(data.data, dtype=np.float64)
        self.malignant = np.flatnonzero(data.target == 0)
        self.benign = np.flatnonzero(data.target == 1)
        self.natural_share = self.malignant.size / self.x.shape[0]

    def sample(
        self, rng: np.random.Generator, n: int, malignant: float | None = None
    ) -> dict[str, np.ndarray]:
        share = self.natural_share if malignant is None else malignant
        n_malignant = rng.binomial(n, share)
        rows = rng.permutation(
            np.concatenate(
                [
                    rng.choice(self.malignant, n_malignant),
                    rng.choice(self.benign, n - n_malignant),
                ]
            )
        )
        return {name: self.x[rows, j] for j, name in enumerate(self.names)}
