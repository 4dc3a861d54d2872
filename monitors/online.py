"""Page–Hinkley test: abrupt changes in a stream of means, between window evaluations.

Window evaluations see a change only once it fills enough of a window. The
Page–Hinkley test watches a cheap stream — one value per batch, such as the
mean confidence of a model's predictions — and reacts within a few values of
an abrupt change. It accumulates how far each value lies from the running
mean, minus a tolerance ``delta``,

    m_t = Σ_{i ≤ t} (x_i − x̄_i − δ)        (upward changes; mirrored for downward)

and signals when ``m_t − min_{i ≤ t} m_i`` exceeds ``threshold``. A change of
size ``Δ`` is signalled after roughly ``threshold / (Δ − δ)`` values; changes
smaller than ``delta`` accumulate nothing. After a signal the detector starts
over, learning the new level.

The state is a handful of numbers, so the service persists it between
batches with :meth:`PageHinkley.to_dict` / :meth:`PageHinkley.from_dict`.

References
----------
.. [1] Page, "Continuous inspection schemes", Biometrika 41(1/2), 1954.
.. [2] Gama, Sebastião & Rodrigues, "On evaluating stream learning
   algorithms", Machine Learning 90(3), 2013.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> detector = PageHinkley(delta=0.005, threshold=0.2)
>>> detector.update(rng.normal(0.90, 0.01, 200))   # a stable mean confidence
False
>>> detector.update(rng.normal(0.80, 0.01, 10))    # the model suddenly less sure
True
>>> detector.last_direction
'down'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Direction = Literal["both", "up", "down"]


@dataclass
class _State:
    n: int = 0
    mean: float = 0.0
    sum_up: float = 0.0
    min_up: float = 0.0
    sum_down: float = 0.0
    min_down: float = 0.0


class PageHinkley:
    """Page–Hinkley change detector on a stream of values.

    Parameters
    ----------
    delta : float, default 0.005
        Tolerated change, in the stream's units: drifts slower than this are
        ignored.
    threshold : float, default 0.2
        Evidence needed to signal (the stream's units × values). Larger means
        fewer false alarms and a longer delay.
    min_instances : int, default 30
        Values seen (since the start or the last change) before any signal.
    direction : {"both", "up", "down"}, default "both"
        Which changes to signal.
    forgetting : float, default 1.0
        Factor in (0, 1] applied to the accumulated sums at each value; below 1
        the detector slowly forgets old evidence.
    """

    def __init__(
        self,
        *,
        delta: float = 0.005,
        threshold: float = 0.2,
        min_instances: int = 30,
        direction: Direction = "both",
        forgetting: float = 1.0,
    ) -> None:
        if not _is_number(delta) or not math.isfinite(delta) or delta < 0:
            raise ValueError("delta must be a finite number >= 0")
        if not _is_number(threshold) or not math.isfinite(threshold) or threshold <= 0:
            raise ValueError("threshold must be a finite number > 0")
        if isinstance(min_instances, bool) or not isinstance(min_instances, int):
            raise ValueError("min_instances must be a whole number")
        if min_instances < 1:
            raise ValueError("min_instances must be at least 1")
        if direction not in ("both", "up", "down"):
            raise ValueError("direction must be 'both', 'up' or 'down'")
        if not _is_number(forgetting) or not 0 < forgetting <= 1:
            raise ValueError("forgetting must be in (0, 1]")
        self.delta = float(delta)
        self.threshold = float(threshold)
        self.min_instances = min_instances
        self.direction: Direction = direction
        self.forgetting = float(forgetting)
        self.n_changes = 0
        self.last_direction: Literal["up", "down"] | None = None
        self._state = _State()

    def reset(self) -> None:
        """Forget everything seen (parameters and the change count are kept)."""
        self._state = _State()

    def update(self, values: npt.ArrayLike) -> bool:
        """Feed values in stream order; True if a change was signalled among them.

        NaN values (an empty batch has no mean) are skipped. After a signal the
        detector restarts from the next value, so the rest of ``values`` is
        learnt as the new level.
        """
        x = np.asarray(values, dtype=np.float64).ravel()
        if np.any(np.isinf(x)):
            raise ValueError("values must be finite (NaN is skipped)")
        changed = False
        s = self._state
        # A scalar loop: the stream is one value per batch, and each step depends
        # on the state left by the previous one.
        for value in x[~np.isnan(x)].tolist():
            s.n += 1
            s.mean += (value - s.mean) / s.n
            s.sum_up = self.forgetting * s.sum_up + (value - s.mean - self.delta)
            s.sum_down = self.forgetting * s.sum_down + (s.mean - value - self.delta)
            s.min_up = min(s.min_up, s.sum_up)
            s.min_down = min(s.min_down, s.sum_down)
            if s.n < self.min_instances:
                continue
            up = self.direction != "down" and s.sum_up - s.min_up > self.threshold
            down = self.direction != "up" and s.sum_down - s.min_down > self.threshold
            if up or down:
                changed = True
                self.n_changes += 1
                self.last_direction = "up" if up else "down"
                s = self._state = _State()
        return changed

    @property
    def n_seen(self) -> int:
        """Values seen since the start or the last change."""
        return self._state.n

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state, JSON-safe.

        >>> detector = PageHinkley(threshold=1.0)
        >>> _ = detector.update([0.5, 0.6, 0.55])
        >>> PageHinkley.from_dict(detector.to_dict()).to_dict() == detector.to_dict()
        True
        """
        s = self._state
        return {
            "delta": self.delta,
            "threshold": self.threshold,
            "min_instances": self.min_instances,
            "direction": self.direction,
            "forgetting": self.forgetting,
            "n_changes": self.n_changes,
            "last_direction": self.last_direction,
            "state": {
                "n": s.n,
                "mean": s.mean,
                "sum_up": s.sum_up,
                "min_up": s.min_up,
                "sum_down": s.sum_down,
                "min_down": s.min_down,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PageHinkley:
        """Rebuild a detector, state included, from :meth:`to_dict` output."""
        detector = cls(
            delta=data["delta"],
            threshold=data["threshold"],
            min_instances=data["min_instances"],
            direction=data["direction"],
            forgetting=data["forgetting"],
        )
        n_changes = data.get("n_changes", 0)
        if isinstance(n_changes, bool) or not isinstance(n_changes, int) or n_changes < 0:
            raise ValueError("n_changes must be a whole number >= 0")
        last = data.get("last_direction")
        if last not in (None, "up", "down"):
            raise ValueError("last_direction must be None, 'up' or 'down'")
        state = data.get("state", {})
        n = state.get("n", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError("state n must be a whole number >= 0")
        numbers = {}
        for key in ("mean", "sum_up", "min_up", "sum_down", "min_down"):
            value = state.get(key, 0.0)
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(f"state {key} must be a finite number")
            numbers[key] = float(value)
        detector.n_changes = n_changes
        detector.last_direction = last
        detector._state = _State(n=n, **numbers)
        return detector


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
