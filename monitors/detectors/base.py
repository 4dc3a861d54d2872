"""The detector contract: a frozen result type and a registry by name and feature kind.

A detector compares the value counters of one feature (missing counter
excluded) between the reference and a window. Each is a pure function of the
two count vectors and, for numerical features, the bin edges. It reports

* ``statistic`` — its own statistic (a test statistic, or a distance);
* ``p_value`` — for the tests (KS, chi-square, G-test); ``None`` for the
  distances (PSI, Jensen–Shannon, Wasserstein), which have no null distribution
  of their own;
* ``effect`` — an effect size on a scale people can read. The tests are paired
  with a distance (KS with normalised Wasserstein, chi-square and G-test with
  Jensen–Shannon), because a p-value measures evidence, not size: at 100k rows
  a meaningless shift is "significant";
* ``threshold`` and ``drifted`` — the effect threshold in force, and whether
  the effect reaches it while the test (if any) is significant at ``alpha``.

Every detector also registers a vectorised form of its effect, which
:func:`monitors.drift.calibrate` uses to simulate its null distribution.

A detector module holds its own statistic and registers it with
:func:`register_distance` or :func:`register_test` (a test borrows the effect,
threshold and edge needs of the distance it is paired with); the registered
:class:`Detector` is the module's public callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from monitors.sketch import FeatureKind

FloatArray = npt.NDArray[np.float64]
Edges = npt.NDArray[np.float64] | None
EffectFunction = Callable[[FloatArray, FloatArray, Edges], FloatArray]
"""``(reference, window, edges) -> effect`` over the last axis; broadcasts over leading axes."""

DEFAULT_ALPHA = 0.01

ANY_KIND: frozenset[FeatureKind] = frozenset({"numerical", "categorical"})
NUMERICAL_ONLY: frozenset[FeatureKind] = frozenset({"numerical"})


@dataclass(frozen=True)
class DetectorResult:
    """What one detector found on one feature.

    Attributes
    ----------
    statistic : float
        The detector's own statistic (KS distance, chi-square, G, PSI, ...).
    p_value : float or None
        Its p-value, or None for the distances, which have no test.
    effect : float
        The effect size (see ``effect_name`` of the detector).
    threshold : float
        The effect threshold applied.
    drifted : bool
        ``effect >= threshold`` and (no test, or ``p_value < alpha``).
    """

    statistic: float
    p_value: float | None
    effect: float
    threshold: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "effect": self.effect,
            "threshold": self.threshold,
            "drifted": self.drifted,
        }


TestFunction = Callable[[FloatArray, FloatArray, Edges], tuple[float, float | None]]
"""``(reference, window, edges) -> (statistic, p_value)`` on float counts."""


@dataclass(frozen=True)
class Detector:
    """A registered detector.

    Attributes
    ----------
    name : str
        Registry name, as used in ``DriftConfig(detectors=...)``.
    kinds : frozenset of {"numerical", "categorical"}
        Feature kinds it applies to.
    threshold : float
        Default effect threshold: the practical floor under which a change is
        not worth an alert, whatever the sample size.
    effect_name : str
        What ``effect`` measures ("wasserstein", "jensen_shannon", "psi").
    effect : EffectFunction
        Vectorised effect size (used for calibration).
    test : TestFunction
        ``(reference, window, edges) -> (statistic, p_value)`` on float counts.
    has_p_value : bool
        Whether ``test`` returns a p-value (a test) or None (a distance).
    needs_edges : bool
        Whether the bin edges of a numerical feature are needed.
    effect_exponent : float
        How the effect's null quantile scales with window rows ``n``:
        roughly ``n ** -effect_exponent`` (0.5 for distances that behave like a
        square root of a chi-square, 1 for PSI which behaves like a chi-square
        over ``n``). Used to reuse a calibration at a nearby window size.
    """

    name: str
    kinds: frozenset[FeatureKind]
    threshold: float
    effect_name: str
    effect: EffectFunction
    test: TestFunction
    has_p_value: bool
    needs_edges: bool
    effect_exponent: float = 0.5

    def __call__(
        self,
        reference: npt.ArrayLike,
        window: npt.ArrayLike,
        edges: npt.ArrayLike | None = None,
        *,
        threshold: float | None = None,
        alpha: float = DEFAULT_ALPHA,
    ) -> DetectorResult:
        """Run on one feature's value counters.

        Parameters
        ----------
        reference, window : array of int
            Value counters of one feature: categories plus "other", or
            ``[underflow, bins..., overflow]`` of a numerical feature.
        edges : array of float, optional
            The feature's bin edges (``len(reference) - 1`` of them); required by
            the detectors that read geometry (``needs_edges``), ignored by the others.
        threshold : float, optional
            Effect from which a (significant) change counts as drift; default
            the detector's own ``threshold``.
        alpha : float, default 0.01
            Significance level of the test, uncorrected
            (:func:`monitors.drift.evaluate` corrects across features); the
            distances have no test and ignore it.

        Returns
        -------
        DetectorResult
        """
        r, w, e = check_counts(reference, window, edges)
        if self.needs_edges and e is None:
            raise ValueError(f"detector {self.name!r} needs the bin edges of the feature")
        statistic, p_value = self.test(r, w, e)
        effect = float(self.effect(r, w, e))
        limit = self.threshold if threshold is None else float(threshold)
        significant = p_value is None or p_value < alpha
        return DetectorResult(
            statistic=float(statistic),
            p_value=None if p_value is None else float(p_value),
            effect=effect,
            threshold=limit,
            drifted=bool(significant and effect >= limit),
        )


_REGISTRY: dict[str, Detector] = {}


def register(detector: Detector) -> Detector:
    """Add a detector to the registry (each name once)."""
    if detector.name in _REGISTRY:
        raise ValueError(f"detector {detector.name!r} is already registered")
    _REGISTRY[detector.name] = detector
    return detector


def register_distance(
    name: str,
    distance: EffectFunction,
    *,
    kinds: frozenset[FeatureKind],
    threshold: float,
    statistic: EffectFunction | None = None,
    needs_edges: bool = False,
    effect_exponent: float = 0.5,
) -> Detector:
    """Register a distance: no test, and the distance is its own effect.

    ``statistic`` is what it reports as ``statistic`` when that differs from
    the effect (the Wasserstein distance in the feature's units, say).
    """
    reported = distance if statistic is None else statistic

    def measure(reference: FloatArray, window: FloatArray, edges: Edges) -> tuple[float, None]:
        return float(reported(reference, window, edges)), None

    return register(
        Detector(
            name=name,
            kinds=kinds,
            threshold=threshold,
            effect_name=name,
            effect=distance,
            test=measure,
            has_p_value=False,
            needs_edges=needs_edges,
            effect_exponent=effect_exponent,
        )
    )


def register_test(
    name: str, test: TestFunction, *, kinds: frozenset[FeatureKind], effect_of: Detector
) -> Detector:
    """Register a test whose effect size (and its threshold) is that of the distance ``effect_of``."""
    return register(replace(effect_of, name=name, kinds=kinds, test=test, has_p_value=True))


def get_detector(name: str) -> Detector:
    """The registered detector called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown detector {name!r}; known: {known}") from None


def available(kind: FeatureKind | None = None) -> tuple[str, ...]:
    """Registered detector names, optionally only those for one feature kind."""
    return tuple(sorted(n for n, d in _REGISTRY.items() if kind is None or kind in d.kinds))


def check_counts(
    reference: npt.ArrayLike,
    window: npt.ArrayLike,
    edges: npt.ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray, Edges]:
    """Validate two count vectors (and optional edges) and return them as floats."""
    r = np.asarray(reference, dtype=np.float64)
    w = np.asarray(window, dtype=np.float64)
    if r.ndim != 1 or r.shape != w.shape:
        raise ValueError("reference and window counts must be 1-d and of the same length")
    if r.size < 1 or np.any(r < 0) or np.any(w < 0):
        raise ValueError("counts must be non-negative")
    if r.sum() <= 0 or w.sum() <= 0:
        raise ValueError("cannot compare an empty distribution: both need at least one count")
    e: Edges = None
    if edges is not None:
        e = np.asarray(edges, dtype=np.float64)
        if e.ndim != 1 or e.size + 1 != r.size:
            raise ValueError(
                "a numerical feature with k edges has k + 1 value counters "
                "(underflow, k - 1 bins, overflow)"
            )
    return r, w, e


def proportions(counts: FloatArray) -> FloatArray:
    """Counts to proportions along the last axis."""
    total = counts.sum(axis=-1, keepdims=True)
    out: FloatArray = counts / total
    return out
