"""Drift decisions: significance after correction AND a calibrated effect floor.

Two failure modes make drift alerts useless in practice, and both come from
reading one number in isolation:

* **Large windows make tiny shifts significant.** A test's p-value measures
  evidence, not size: at 100k rows the KS test flags a 0.02 σ shift of the mean
  almost every time, a change no model owner would act on.
* **Distances are biased on small windows.** PSI, Jensen–Shannon or
  Wasserstein distances between two samples of the *same* distribution are not
  zero but shrink with sample size: PSI ≥ 0.1, the usual "some change" rule,
  fires on most identical samples of 100 rows.

So a feature is flagged as drifted only when both hold:

1. its test is **significant after correction** across the features
   evaluated together (Benjamini–Hochberg by default, Bonferroni on request)
   at ``alpha`` — this controls false alarms from chance;
2. its **effect size reaches a threshold**, which with ``min_effect="auto"`` is
   the larger of a practical floor (0.1 reference σ of normalised Wasserstein,
   0.1 of PSI or of Jensen–Shannon distance) and the ``1 − alpha`` quantile of
   the effect between the reference and windows of the same size drawn from
   the reference itself (:func:`calibrate`) — this ignores changes too small
   to matter, and changes no larger than sampling noise at this window size.

Distances without a test (PSI, Jensen–Shannon, Wasserstein used alone) rely on
the effect threshold only; with ``"auto"`` that threshold is itself the
calibrated ``1 − alpha`` null quantile, so they too are sample-size aware.

``detectors="auto"`` picks, per feature kind:

* **numerical → KS test, normalised Wasserstein effect.** KS is distribution
  free and sensitive to any change of shape, and works on the binned CDFs; the
  Wasserstein distance in reference σ says how far mass moved, in units people
  read ("the mean moved by 0.3 σ").
* **categorical → chi-square test, Jensen–Shannon effect.** Pearson's
  chi-square keeps its nominal level with small expected counts better than
  the G-test; Jensen–Shannon is bounded in [0, 1], symmetric, and finite when a
  new category appears (where PSI and KL need an arbitrary floor).

Missing values are never folded into the distributions: each feature reports
its missing fraction in the window and in the reference, side by side, and the
tests compare present values only.

A window with fewer than ``min_rows`` rows gets ``status="insufficient_data"``
and is never drifted; a feature with fewer than ``min_rows`` present values in
an otherwise large window is reported but not tested.

Examples
--------
>>> import numpy as np
>>> from monitors.sketch import SketchSpec
>>> rng = np.random.default_rng(0)
>>> kinds = {"x": "numerical", "plan": "categorical"}
>>> plans = np.array(["free", "pro", "team"], dtype=object)
>>> def table(n, shift=0.0):
...     return {"x": rng.normal(shift, 1.0, n), "plan": plans[rng.integers(0, 3, n)]}
>>> reference = table(20_000)
>>> spec = SketchSpec.fit(reference, kinds)
>>> ref_counts = spec.count(reference)
>>> config = DriftConfig()
>>> evaluate(spec, ref_counts, spec.count(table(1000)), config=config).status
'ok'
>>> result = evaluate(spec, ref_counts, spec.count(table(1000, shift=0.5)), config=config)
>>> result.status, [f.name for f in result.features if f.drifted]
('drift', ['x'])
>>> evaluate(spec, ref_counts, spec.count(table(50)), config=config).status
'insufficient_data'
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from monitors.correction import CORRECTIONS, Correction, adjust
from monitors.detectors import AUTO, Detector, get_detector
from monitors.sketch import FeatureKind, SketchSpec

Status = Literal["ok", "drift", "insufficient_data"]


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class DriftConfig:
    """How a model's windows are judged.

    Parameters
    ----------
    detectors : "auto" or mapping of str to str, default "auto"
        ``"auto"`` (KS for numerical, chi-square for categorical features), or
        a detector name per feature; features not in the mapping use ``"auto"``.
    alpha : float, default 0.01
        Significance level after correction, and ``1 − alpha`` is the null
        quantile used by ``min_effect="auto"``.
    correction : {"bh", "bonferroni"}, default "bh"
        Correction of the p-values across the features evaluated together.
    min_effect : "auto", float or mapping of str to float, default "auto"
        Effect threshold: ``"auto"`` (calibrated, see the module docstring), a
        value for every feature, or a value per feature (others ``"auto"``).
    min_rows : int, default 200
        Windows with fewer rows are reported as ``"insufficient_data"``.

    Examples
    --------
    >>> config = DriftConfig(detectors={"age": "psi"}, correction="bonferroni")
    >>> DriftConfig.from_dict(config.to_dict()) == config
    True
    >>> DriftConfig(alpha=2.0)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be in (0, 1), not 2.0
    """

    detectors: Literal["auto"] | Mapping[str, str] = "auto"
    alpha: float = 0.01
    correction: Correction = "bh"
    min_effect: Literal["auto"] | float | Mapping[str, float] = "auto"
    min_rows: int = 200

    def __post_init__(self) -> None:
        if self.detectors != "auto":
            if not isinstance(self.detectors, Mapping):
                raise ValueError("detectors must be 'auto' or a mapping of feature to detector")
            chosen = dict(self.detectors)
            for feature, name in chosen.items():
                if not isinstance(feature, str) or not isinstance(name, str):
                    raise ValueError("detectors maps feature names to detector names")
                if name != "auto":
                    get_detector(name)  # raises on an unknown name
            object.__setattr__(self, "detectors", chosen)
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float):
            raise ValueError("alpha must be a number")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), not {self.alpha}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, not {self.correction!r}")
        if self.min_effect != "auto":
            if isinstance(self.min_effect, Mapping):
                effects = {k: _check_effect(v, k) for k, v in self.min_effect.items()}
                object.__setattr__(self, "min_effect", effects)
            else:
                object.__setattr__(self, "min_effect", _check_effect(self.min_effect, None))
        if isinstance(self.min_rows, bool) or not isinstance(self.min_rows, int):
            raise ValueError("min_rows must be a whole number")
        if self.min_rows < 1:
            raise ValueError("min_rows must be at least 1")

    def detector_for(self, name: str, kind: FeatureKind) -> Detector:
        """The detector that judges feature ``name`` of kind ``kind``."""
        chosen = "auto" if self.detectors == "auto" else self.detectors.get(name, "auto")
        if chosen == "auto":
            chosen = AUTO[kind]
        detector = get_detector(chosen)
        if kind not in detector.kinds:
            raise ValueError(f"detector {chosen!r} does not apply to {kind} feature {name!r}")
        return detector

    def fixed_min_effect(self, name: str) -> float | None:
        """The configured effect threshold of a feature, or None where it is ``"auto"``."""
        if isinstance(self.min_effect, Mapping):
            return self.min_effect.get(name)
        if isinstance(self.min_effect, float):
            return self.min_effect
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "detectors": self.detectors if self.detectors == "auto" else dict(self.detectors),
            "alpha": self.alpha,
            "correction": self.correction,
            "min_effect": (
                dict(self.min_effect) if isinstance(self.min_effect, Mapping) else self.min_effect
            ),
            "min_rows": self.min_rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftConfig:
        """Rebuild (and validate) a config from :meth:`to_dict` output."""
        unknown = set(data) - {"detectors", "alpha", "correction", "min_effect", "min_rows"}
        if unknown:
            raise ValueError(f"unknown drift settings: {', '.join(sorted(unknown))}")
        return cls(**dict(data))


def _check_effect(value: object, feature: str | None) -> float:
    where = f" for {feature!r}" if feature is not None else ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"min_effect{where} must be 'auto' or a number")
    v = float(value)
    if not math.isfinite(v) or v < 0.0:
        raise ValueError(f"min_effect{where} must be a finite number >= 0")
    return v


@dataclass(frozen=True)
class FeatureCalibration:
    """The null distribution of one feature's effect at one window size.

    Attributes
    ----------
    name, detector, effect : str
        Feature, detector and what its effect measures.
    window_rows : int
        Present (non-missing) values per simulated window.
    quantile : float
        The ``1 − alpha`` quantile of ``null``.
    null : tuple of float
        The simulated effects, sorted.
    """

    name: str
    detector: str
    effect: str
    window_rows: int
    quantile: float
    null: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "detector": self.detector,
            "effect": self.effect,
            "window_rows": self.window_rows,
            "quantile": self.quantile,
            "null": list(self.null),
        }


@dataclass(frozen=True)
class Calibration:
    """Effect null distributions for windows of ``window_rows`` rows (see :func:`calibrate`)."""

    window_rows: int
    alpha: float
    n_simulations: int
    seed: int
    features: tuple[FeatureCalibration, ...]

    def feature(self, name: str) -> FeatureCalibration | None:
        """The calibration of one feature, if it was calibrated."""
        for f in self.features:
            if f.name == name:
                return f
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; :meth:`from_dict` rebuilds an equal calibration."""
        return {
            "window_rows": self.window_rows,
            "alpha": self.alpha,
            "n_simulations": self.n_simulations,
            "seed": self.seed,
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Rebuild a calibration from :meth:`to_dict` output."""
        features = tuple(
            FeatureCalibration(
                name=str(f["name"]),
                detector=str(f["detector"]),
                effect=str(f["effect"]),
                window_rows=int(f["window_rows"]),
                quantile=float(f["quantile"]),
                null=tuple(float(v) for v in f["null"]),
            )
            for f in data["features"]
        )
        calibration = cls(
            window_rows=int(data["window_rows"]),
            alpha=float(data["alpha"]),
            n_simulations=int(data["n_simulations"]),
            seed=int(data["seed"]),
            features=features,
        )
        if calibration.window_rows < 1 or not 0.0 < calibration.alpha < 1.0:
            raise ValueError("a calibration needs window_rows >= 1 and alpha in (0, 1)")
        return calibration


def calibrate(
    spec: SketchSpec,
    reference_counts: npt.ArrayLike,
    *,
    window_rows: int,
    config: DriftConfig,
    n_simulations: int = 200,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> Calibration:
    """Simulate each feature's effect on windows with no drift, and take its ``1 − alpha`` quantile.

    A parametric bootstrap: both a reference of the reference's size and a
    window of ``window_rows`` rows are drawn (multinomially) from the
    reference's own distribution, and the detector's effect between them is
    computed. Drawing the reference too accounts for its own sampling noise,
    which matters when it is not much larger than the window. Everything is
    vectorised over the simulations: a few milliseconds per feature.

    Parameters
    ----------
    spec : SketchSpec
    reference_counts : array of int
        The reference's counts (``spec.size`` of them).
    window_rows : int
        Rows per window (present values per feature are scaled by the
        feature's reference missing fraction).
    config : DriftConfig
        Gives the detector of each feature and ``alpha``.
    n_simulations : int, default 200
    seed : int, default 0
        Each feature draws from its own stream derived from ``seed`` and its
        name, so adding a feature does not change the others' calibration.
    names : sequence of str, optional
        Only these features (default: all).

    Returns
    -------
    Calibration

    Examples
    --------
    >>> import numpy as np
    >>> from monitors.sketch import SketchSpec
    >>> x = {"x": np.random.default_rng(1).normal(size=50_000)}
    >>> spec = SketchSpec.fit(x, {"x": "numerical"})
    >>> counts = spec.count(x)
    >>> small = calibrate(spec, counts, window_rows=100, config=DriftConfig())
    >>> large = calibrate(spec, counts, window_rows=10_000, config=DriftConfig())
    >>> q100, q10k = small.feature("x").quantile, large.feature("x").quantile
    >>> bool(q100 > 0.1 > q10k)  # noise alone exceeds the 0.1 floor at 100 rows
    True
    >>> Calibration.from_dict(small.to_dict()) == small
    True
    """
    _check_simulation_sizes(window_rows, n_simulations)
    reference = _check_counts(spec, reference_counts, "reference")
    kinds = spec.kinds
    features = [
        _calibrate_feature(
            spec,
            reference,
            name,
            config.detector_for(name, kinds[name]),
            window_rows=window_rows,
            alpha=config.alpha,
            n_simulations=n_simulations,
            seed=seed,
        )
        for name in _select(spec, names)
    ]
    return Calibration(
        window_rows=window_rows,
        alpha=config.alpha,
        n_simulations=n_simulations,
        seed=seed,
        # a feature with no present value has nothing to resample: evaluate does not test it
        features=tuple(f for f in features if f is not None),
    )


def _check_simulation_sizes(window_rows: int, n_simulations: int) -> None:
    if isinstance(window_rows, bool) or not isinstance(window_rows, int) or window_rows < 1:
        raise ValueError("window_rows must be a positive whole number")
    if isinstance(n_simulations, bool) or not isinstance(n_simulations, int):
        raise ValueError("n_simulations must be a whole number")
    if n_simulations < 10:
        raise ValueError("n_simulations must be at least 10")


def _calibrate_feature(
    spec: SketchSpec,
    reference: npt.NDArray[np.int64],
    name: str,
    detector: Detector,
    *,
    window_rows: int,
    alpha: float,
    n_simulations: int,
    seed: int,
) -> FeatureCalibration | None:
    """One feature's null effects (simulated), or None when it has no present value."""
    values, missing = spec.split(name, reference)
    n_ref = int(values.sum())
    if n_ref == 0:
        return None
    n_win = max(1, round(window_rows * n_ref / (n_ref + missing)))
    p = values / n_ref
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    refs = rng.multinomial(n_ref, p, size=n_simulations).astype(np.float64)
    wins = rng.multinomial(n_win, p, size=n_simulations).astype(np.float64)
    null = np.sort(detector.effect(refs, wins, _edges(spec, name)))
    quantile = float(np.quantile(null, 1.0 - alpha, method="higher"))
    return FeatureCalibration(
        name=name,
        detector=detector.name,
        effect=detector.effect_name,
        window_rows=n_win,
        quantile=quantile,
        null=tuple(float(v) for v in null),
    )


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature of one window.

    ``statistic``, ``p_value``, ``effect`` and ``threshold`` are None where the
    feature was not tested (too few present values, or an insufficient window);
    ``p_value`` and ``adjusted_p_value`` are None for distances without a test.
    ``rows`` counts the window's present (non-missing) values of the feature.
    """

    name: str
    kind: FeatureKind
    detector: str
    statistic: float | None
    p_value: float | None
    adjusted_p_value: float | None
    effect: float | None
    threshold: float | None
    drifted: bool
    rows: int
    missing_fraction: float | None
    reference_missing_fraction: float | None
    effect_measure: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (plain floats, None instead of NaN)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "detector": self.detector,
            "effect_measure": self.effect_measure,
            "statistic": _finite_or_none(self.statistic),
            "p_value": _finite_or_none(self.p_value),
            "adjusted_p_value": _finite_or_none(self.adjusted_p_value),
            "effect": _finite_or_none(self.effect),
            "threshold": _finite_or_none(self.threshold),
            "drifted": bool(self.drifted),
            "rows": int(self.rows),
            "missing_fraction": _finite_or_none(self.missing_fraction),
            "reference_missing_fraction": _finite_or_none(self.reference_missing_fraction),
        }


@dataclass(frozen=True)
class DriftResult:
    """The verdict on one window: drifted when any evaluated feature is."""

    status: Status
    drifted: bool
    rows: int
    reference_rows: int
    features: tuple[FeatureDrift, ...]

    def feature(self, name: str) -> FeatureDrift:
        """The verdict on one feature."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"feature {name!r} was not evaluated")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "status": self.status,
            "drifted": bool(self.drifted),
            "rows": int(self.rows),
            "reference_rows": int(self.reference_rows),
            "features": [f.to_dict() for f in self.features],
        }


@dataclass(frozen=True)
class _Tested:
    statistic: float
    p_value: float | None
    effect: float
    threshold: float


def evaluate(
    spec: SketchSpec,
    reference_counts: npt.ArrayLike,
    window_counts: npt.ArrayLike,
    *,
    config: DriftConfig,
    calibration: Calibration | None = None,
    names: Sequence[str] | None = None,
) -> DriftResult:
    """Judge a window against the reference, feature by feature.

    Parameters
    ----------
    spec : SketchSpec
    reference_counts, window_counts : array of int
        Counts vectors (``spec.size`` each); a window's is the sum of its blocks'.
    config : DriftConfig
    calibration : Calibration, optional
        From :func:`calibrate` for this reference and window size. Used by
        features whose ``min_effect`` is ``"auto"``; computed here when absent.
        If the window's rows differ from the calibration's, each null quantile
        is rescaled by ``(calibrated rows / rows) ** e``, with ``e`` the
        detector's ``effect_exponent`` (how its null effect shrinks with ``n``).
    names : sequence of str, optional
        Features to evaluate (default: all). The correction is across these.

    Returns
    -------
    DriftResult

    Examples
    --------
    >>> import numpy as np
    >>> from monitors.sketch import SketchSpec
    >>> rng = np.random.default_rng(7)
    >>> colors = np.array(["red", "green", "blue"], dtype=object)
    >>> reference = {"color": colors[rng.integers(0, 3, 30_000)]}
    >>> spec = SketchSpec.fit(reference, {"color": "categorical"})
    >>> window = {"color": np.concatenate([colors[rng.integers(0, 3, 900)], ["violet"] * 100])}
    >>> result = evaluate(spec, spec.count(reference), spec.count(window), config=DriftConfig())
    >>> verdict = result.feature("color")
    >>> verdict.detector, verdict.effect_measure, verdict.drifted, round(verdict.effect, 2)
    ('chi2', 'jensen_shannon', True, 0.23)
    """
    reference = _check_counts(spec, reference_counts, "reference")
    window = _check_counts(spec, window_counts, "window")
    selected = _select(spec, names)
    rows = spec.rows(window)
    enough = rows >= config.min_rows
    testable = _testable(spec, reference, window, selected, config=config, enough=enough)
    tested = _run_tests(
        spec, reference, testable, config=config, calibration=calibration, rows=rows
    )
    adjusted = _adjusted_p_values(tested, config)
    reference_rows = spec.rows(reference)
    features = tuple(
        _feature_drift(
            name,
            spec.kinds[name],
            spec.split(name, reference)[1] / reference_rows if reference_rows else None,
            spec.split(name, window),
            rows=rows,
            tested=tested.get(name),
            adjusted_p_value=adjusted.get(name),
            config=config,
        )
        for name in selected
    )
    any_drift = any(f.drifted for f in features)
    status: Status = "insufficient_data" if not enough else ("drift" if any_drift else "ok")
    return DriftResult(
        status=status,
        drifted=any_drift,
        rows=rows,
        reference_rows=reference_rows,
        features=features,
    )


_Testable = tuple[Detector, npt.NDArray[np.int64], npt.NDArray[np.int64]]


def _run_tests(
    spec: SketchSpec,
    reference: npt.NDArray[np.int64],
    testable: dict[str, _Testable],
    *,
    config: DriftConfig,
    calibration: Calibration | None,
    rows: int,
) -> dict[str, _Tested]:
    """Each testable feature's test, with the calibration its ``"auto"`` minimum effect
    needs (the given one, or one computed for this window's rows)."""
    auto = [n for n in testable if config.fixed_min_effect(n) is None]
    if auto:
        calibration = _calibration_for(
            spec, reference, calibration, window_rows=rows, config=config, names=auto
        )
    return {
        name: _test(spec, name, detector, ref_values, win_values, config, calibration, rows)
        for name, (detector, ref_values, win_values) in testable.items()
    }


def _testable(
    spec: SketchSpec,
    reference: npt.NDArray[np.int64],
    window: npt.NDArray[np.int64],
    selected: Sequence[str],
    *,
    config: DriftConfig,
    enough: bool,
) -> dict[str, _Testable]:
    """The features with enough present values on both sides to be tested, with their values."""
    kinds = spec.kinds
    testable: dict[str, _Testable] = {}
    for name in selected:
        detector = config.detector_for(name, kinds[name])
        ref_values, _ = spec.split(name, reference)
        win_values, _ = spec.split(name, window)
        if enough and int(win_values.sum()) >= config.min_rows and int(ref_values.sum()) > 0:
            testable[name] = (detector, ref_values, win_values)
    return testable


def _calibration_for(
    spec: SketchSpec,
    reference: npt.NDArray[np.int64],
    calibration: Calibration | None,
    *,
    window_rows: int,
    config: DriftConfig,
    names: Sequence[str],
) -> Calibration:
    """The given calibration (made at the config's alpha), or one computed for ``names`` now."""
    if calibration is None:
        return calibrate(spec, reference, window_rows=window_rows, config=config, names=names)
    if calibration.alpha != config.alpha:
        raise ValueError(
            f"the calibration was made at alpha={calibration.alpha}, "
            f"the config asks for alpha={config.alpha}: recalibrate"
        )
    return calibration


def _test(
    spec: SketchSpec,
    name: str,
    detector: Detector,
    ref_values: npt.NDArray[np.int64],
    win_values: npt.NDArray[np.int64],
    config: DriftConfig,
    calibration: Calibration | None,
    rows: int,
) -> _Tested:
    """One feature's detector run, at its fixed or calibrated threshold."""
    threshold = config.fixed_min_effect(name)
    if threshold is None:
        assert calibration is not None
        threshold = max(detector.threshold, _null_quantile(calibration, name, detector, rows))
    result = detector(ref_values, win_values, _edges(spec, name), threshold=threshold)
    return _Tested(result.statistic, result.p_value, result.effect, threshold)


def _adjusted_p_values(tested: Mapping[str, _Tested], config: DriftConfig) -> dict[str, float]:
    """The p-values of the tested features with one, corrected for testing them all."""
    raw = {name: t.p_value for name, t in tested.items() if t.p_value is not None}
    corrected = adjust(list(raw.values()), config.correction)
    return {name: float(v) for name, v in zip(raw, corrected, strict=True)}


def _feature_drift(
    name: str,
    kind: FeatureKind,
    reference_missing_fraction: float | None,
    window_split: tuple[npt.NDArray[np.int64], int],
    *,
    rows: int,
    tested: _Tested | None,
    adjusted_p_value: float | None,
    config: DriftConfig,
) -> FeatureDrift:
    """The verdict on one feature (an untested one gets Nones and ``drifted=False``)."""
    detector = config.detector_for(name, kind)
    win_values, win_missing = window_split
    t, adj = tested, adjusted_p_value
    drifted = (
        t is not None
        and t.effect >= t.threshold
        and (t.p_value is None or (adj is not None and adj <= config.alpha))
    )
    return FeatureDrift(
        name=name,
        kind=kind,
        detector=detector.name,
        statistic=None if t is None else t.statistic,
        p_value=None if t is None else t.p_value,
        adjusted_p_value=adj,
        effect=None if t is None else t.effect,
        threshold=None if t is None else t.threshold,
        drifted=bool(drifted),
        rows=int(win_values.sum()),
        missing_fraction=win_missing / rows if rows else None,
        reference_missing_fraction=reference_missing_fraction,
        effect_measure=detector.effect_name,
    )


def _null_quantile(calibration: Calibration, name: str, detector: Detector, rows: int) -> float:
    calibrated = calibration.feature(name)
    if calibrated is None or calibrated.detector != detector.name:
        raise ValueError(
            f"the calibration does not cover feature {name!r} with detector "
            f"{detector.name!r}: recalibrate for this config"
        )
    scale = float((calibration.window_rows / rows) ** detector.effect_exponent)
    return calibrated.quantile * scale


def _edges(spec: SketchSpec, name: str) -> npt.NDArray[np.float64] | None:
    feature = spec.feature(name)
    if feature.kind != "numerical":
        return None
    return np.asarray(feature.edges, dtype=np.float64)


def _select(spec: SketchSpec, names: Sequence[str] | None) -> tuple[str, ...]:
    if names is None:
        return spec.names
    if isinstance(names, str):
        raise ValueError("names is a sequence of feature names, not one string")
    selected = tuple(names)
    known = set(spec.names)
    unknown = [n for n in selected if n not in known]
    if unknown:
        raise KeyError(f"unknown features: {', '.join(map(repr, unknown))}")
    if len(set(selected)) != len(selected):
        raise ValueError("names must not repeat a feature")
    return selected


def _check_counts(spec: SketchSpec, counts: npt.ArrayLike, what: str) -> npt.NDArray[np.int64]:
    c = np.asarray(counts)
    if c.shape != (spec.size,):
        raise ValueError(f"{what} counts must have shape ({spec.size},), not {c.shape}")
    if not np.issubdtype(c.dtype, np.integer) or np.any(c < 0):
        raise ValueError(f"{what} counts must be non-negative integers")
    return c.astype(np.int64, copy=False)
