"""The 2 × k contingency table shared by the chi-square and G-tests."""

from __future__ import annotations

from monitors.detectors.base import FloatArray


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
