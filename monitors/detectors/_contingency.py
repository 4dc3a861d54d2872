"""The 2 × k contingency table and test of homogeneity shared by the chi-square and G-tests."""

from __future__ import annotations

from collections.abc import Callable

from scipy import stats

from monitors.detectors.base import Edges, FloatArray, TestFunction

Cells = Callable[[FloatArray, FloatArray], float]
"""``(observed, expected) -> one row's part of the statistic``."""


def table(
    reference: FloatArray, window: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, int]:
    """Observed and expected counts of both rows, without empty columns, and the dof."""
    keep = (reference + window) > 0
    r, w = reference[keep], window[keep]
    n_r, n_w = r.sum(), w.sum()
    column = r + w
    expected_r = column * (n_r / (n_r + n_w))
    expected_w = column * (n_w / (n_r + n_w))
    return r, w, expected_r, expected_w, int(keep.sum()) - 1


def homogeneity_test(cells: Cells) -> TestFunction:
    """The test whose statistic sums ``cells`` over both rows, read against chi-square with k − 1 dof.

    A table with a single non-empty column has nothing to test: statistic 0, p-value 1.
    """

    def test(reference: FloatArray, window: FloatArray, edges: Edges) -> tuple[float, float]:
        del edges
        r, w, expected_r, expected_w, dof = table(reference, window)
        if dof < 1:
            return 0.0, 1.0
        statistic = max(cells(r, expected_r) + cells(w, expected_w), 0.0)
        return statistic, float(stats.chi2.sf(statistic, dof))

    return test
