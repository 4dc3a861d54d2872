"""Multiple-testing correction against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitors.correction import adjust, benjamini_hochberg, bonferroni


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40))
def test_bh_matches_scipy(p: list[float]) -> None:
    expected = stats.false_discovery_control(np.array(p), method="bh")
    assert benjamini_hochberg(p) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_bonferroni_and_dispatch() -> None:
    assert bonferroni([0.01, 0.3]).tolist() == [0.02, 0.6]
    assert adjust([0.01, 0.3], "bonferroni").tolist() == [0.02, 0.6]
    assert adjust([], "bh").size == 0
    with pytest.raises(ValueError, match="correction"):
        adjust([0.1], "holm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust([1.5])


def test_bh_is_never_more_conservative_than_bonferroni() -> None:
    p = np.random.default_rng(0).uniform(size=30) ** 3
    assert np.all(benjamini_hochberg(p) <= bonferroni(p) + 1e-15)
