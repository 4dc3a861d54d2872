"""Sketches: binning edge cases, categorical capping, serialisation, mergeable counts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from monitors.sketch import OTHER_LABEL, FeatureSketch, SketchSpec

KINDS = {"x": "numerical", "c": "categorical"}


def reference_columns(n: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[:10] = np.nan
    c = rng.choice(np.array(["a", "b", "c", None], dtype=object), n, p=[0.5, 0.3, 0.15, 0.05])
    return {"x": x, "c": c}


def test_numerical_layout_and_quantile_edges() -> None:
    spec = SketchSpec.fit(reference_columns(), KINDS, n_bins=64)
    x = spec.feature("x")
    assert len(x.edges) == 66  # 65 quantiles (distinct for continuous data) + the closing edge
    assert x.size == len(x.edges) + 2  # underflow, bins, overflow, missing
    counts = spec.count(reference_columns())[spec.feature_slice("x")]
    assert counts[0] == 0
    assert counts[-2] == 0
    assert counts[-1] == 10  # missing
    bins = counts[1:-2]
    assert bins.sum() == 1990
    assert bins.max() <= 2 * 1990 / 64  # quantile bins are balanced


def test_constant_column_gets_one_bin_and_sees_any_other_value() -> None:
    spec = SketchSpec.fit({"x": np.full(100, 3.5)}, {"x": "numerical"})
    assert spec.feature("x").edges[0] == 3.5
    assert len(spec.feature("x").edges) == 2
    counts = spec.count({"x": np.array([3.5, 3.5, 3.4, 3.6, np.nan])})
    assert counts.tolist() == [1, 2, 1, 1]


def test_ties_collapse_edges_and_discrete_values_get_their_own_bins() -> None:
    rng = np.random.default_rng(1)
    flags = rng.choice([0.0, 1.0], 1000, p=[0.9, 0.1])
    spec = SketchSpec.fit({"f": flags}, {"f": "numerical"})
    assert spec.feature("f").edges[:2] == (0.0, 1.0)
    counts = spec.count({"f": np.array([0.0, 1.0, 1.0])})
    assert counts.tolist() == [0, 1, 2, 0, 0]  # zeros and ones are told apart
    steps = SketchSpec.fit({"k": rng.integers(0, 5, 1000).astype(float)}, {"k": "numerical"})
    assert steps.feature("k").edges[:5] == (0.0, 1.0, 2.0, 3.0, 4.0)


def test_infinities_land_in_the_outer_counters_and_nan_is_missing() -> None:
    spec = SketchSpec.fit({"x": np.arange(10.0)}, {"x": "numerical"})
    counts = spec.count({"x": np.array([-np.inf, np.inf, np.nan, 5.0])})
    assert counts[0] == 1
    assert counts[-2] == 1
    assert counts[-1] == 1
    assert counts.sum() == 4


def test_categories_most_frequent_first_capped_with_other() -> None:
    values = np.array(["z"] * 5 + ["y"] * 3 + ["x"] * 3 + ["w"] + [None] * 2, dtype=object)
    spec = SketchSpec.fit({"c": values}, {"c": "categorical"}, max_categories=2)
    c = spec.feature("c")
    assert c.categories == ("z", "x")  # ties broken by label: x before y
    assert c.labels == ("z", "x", OTHER_LABEL)
    counts = spec.count({"c": values})
    assert counts.tolist() == [5, 3, 4, 2]


def test_nan_in_a_categorical_column_counts_as_missing() -> None:
    spec = SketchSpec.fit({"c": np.array(["a", "b"], dtype=object)}, {"c": "categorical"})
    counts = spec.count({"c": np.array(["a", float("nan"), None, "q"], dtype=object)})
    assert counts.tolist() == [1, 0, 1, 2]


@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "q", ""])), max_size=60))
def test_categorical_counts_match_a_count_by_hand(values: list[str | None]) -> None:
    spec = SketchSpec.fit({"c": np.array(["a", "b", "b", "c"], dtype=object)}, {"c": "categorical"})
    categories = spec.feature("c").categories
    expected = [values.count(c) for c in categories]
    expected += [sum(v is not None and v not in categories for v in values), values.count(None)]
    column = np.array(values, dtype=object)
    assert spec.count({"c": column}).tolist() == expected
    # the same values with a stray float NaN take the general path, and agree
    with_nan = np.array([*values, float("nan")], dtype=object)
    assert spec.count({"c": with_nan}).tolist() == [*expected[:-1], expected[-1] + 1]


def test_absent_feature_counts_as_all_missing() -> None:
    spec = SketchSpec.fit(reference_columns(), KINDS)
    counts = spec.count({"x": np.array([0.0, 1.0, 2.0])})
    c = counts[spec.feature_slice("c")]
    assert c[-1] == 3
    assert c[:-1].sum() == 0
    assert spec.rows(counts) == 3


def test_columns_of_different_lengths_are_rejected() -> None:
    spec = SketchSpec.fit(reference_columns(), KINDS)
    with pytest.raises(ValueError, match="same number of rows"):
        spec.count({"x": np.zeros(3), "c": np.array(["a"], dtype=object)})


def test_mixed_types_in_a_categorical_column_are_rejected() -> None:
    spec = SketchSpec.fit({"c": np.array(["a"], dtype=object)}, {"c": "categorical"})
    with pytest.raises(TypeError, match="must hold str"):
        spec.count({"c": np.array(["a", 1.5], dtype=object)})


def test_round_trip_through_json() -> None:
    spec = SketchSpec.fit(reference_columns(), KINDS, n_bins=32)
    again = SketchSpec.from_dict(json.loads(json.dumps(spec.to_dict(), allow_nan=False)))
    assert again == spec
    assert np.array_equal(
        again.count(reference_columns(seed=3)), spec.count(reference_columns(seed=3))
    )


def test_from_dict_validates() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        SketchSpec.from_dict(
            {"version": 1, "features": [{"name": "x", "kind": "numerical", "edges": [1, 1]}]}
        )
    with pytest.raises(ValueError, match="version"):
        SketchSpec.from_dict({"version": 99, "features": []})
    with pytest.raises(ValueError, match="duplicate"):
        SketchSpec((FeatureSketch("a", "categorical"), FeatureSketch("a", "categorical")))


def test_histogram_is_what_a_ui_draws() -> None:
    spec = SketchSpec.fit(reference_columns(), KINDS, n_bins=8)
    counts = spec.count(reference_columns())
    h = spec.histogram("x", counts)
    assert len(h["edges"]) == len(h["counts"]) + 1
    assert sum(h["counts"]) + h["underflow"] + h["overflow"] + h["missing"] == 2000
    hc = spec.histogram("c", counts)
    assert hc["labels"] == ["a", "b", "c", OTHER_LABEL]
    json.dumps(h, allow_nan=False)


numbers = arrays(
    np.float64,
    st.integers(0, 60),
    elements=st.one_of(
        st.floats(-5, 5),
        st.just(np.nan),
        st.just(np.inf),
        st.just(-np.inf),
    ),
)
labels = st.lists(st.one_of(st.sampled_from(["a", "b", "c", "new"]), st.none()), max_size=60)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(a=numbers, b=numbers, ca=labels, cb=labels)
def test_counts_merge_by_addition(a: np.ndarray, b: np.ndarray, ca: list, cb: list) -> None:
    spec = SketchSpec.fit(reference_columns(), KINDS, n_bins=16)
    na, nb = min(a.size, len(ca)), min(b.size, len(cb))
    first = {"x": a[:na], "c": np.array(ca[:na], dtype=object)}
    second = {"x": b[:nb], "c": np.array(cb[:nb], dtype=object)}
    both = {k: np.concatenate([first[k], second[k]]) for k in first}
    assert np.array_equal(spec.count(both), spec.count(first) + spec.count(second))
    assert spec.rows(spec.count(both)) == na + nb
