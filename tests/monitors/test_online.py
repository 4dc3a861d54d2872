"""Page–Hinkley: detection, false alarms, persistence between batches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitors.online import PageHinkley


def stream(seed: int, n: int, mean: float, sd: float = 0.01) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, sd, n)


def test_stable_streams_raise_no_alarm() -> None:
    alarms = sum(PageHinkley().update(stream(seed, 2_000, 0.85)) for seed in range(20))
    assert alarms == 0


@pytest.mark.parametrize(("change", "direction"), [(-0.05, "down"), (0.05, "up")])
def test_abrupt_change_is_found_quickly(change: float, direction: str) -> None:
    detector = PageHinkley()
    assert not detector.update(stream(1, 300, 0.85))
    after = stream(2, 50, 0.85 + change)
    delay = next(i for i in range(1, 51) if detector.update(after[i - 1 : i]))
    assert delay <= 10  # threshold / (change - delta) = 0.2 / 0.045: about 5 values
    assert detector.last_direction == direction
    assert detector.n_changes == 1
    assert detector.n_seen == 0  # starts over on the new level


def test_one_sided_detector_ignores_the_other_side() -> None:
    detector = PageHinkley(direction="up")
    detector.update(stream(1, 300, 0.85))
    assert not detector.update(stream(2, 100, 0.7))


def test_state_persists_between_batches() -> None:
    values = np.concatenate([stream(3, 200, 0.9), stream(4, 40, 0.8)])
    whole = PageHinkley()
    whole_changed = whole.update(values)
    pieces = PageHinkley()
    changed = False
    for batch in np.array_split(values, 12):
        restored = PageHinkley.from_dict(json.loads(json.dumps(pieces.to_dict())))
        changed |= restored.update(batch)
        pieces = restored
    assert changed
    assert whole_changed
    assert pieces.to_dict() == whole.to_dict()


def test_nan_is_skipped_and_reset_forgets() -> None:
    detector = PageHinkley(min_instances=5)
    detector.update(np.array([0.5, np.nan, 0.5]))
    assert detector.n_seen == 2
    detector.reset()
    assert detector.n_seen == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delta": -1.0},
        {"threshold": 0.0},
        {"min_instances": 0},
        {"direction": "sideways"},
        {"forgetting": 1.5},
        {"threshold": float("nan")},
    ],
)
def test_parameters_are_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must"):
        PageHinkley(**kwargs)


def test_from_dict_validates_state() -> None:
    data = PageHinkley().to_dict()
    data["state"]["mean"] = float("inf")
    with pytest.raises(ValueError, match="finite"):
        PageHinkley.from_dict(data)
    with pytest.raises(ValueError, match="finite"):
        PageHinkley().update([np.inf])
