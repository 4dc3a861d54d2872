"""The exception rules over arrays: no database, no records."""

from __future__ import annotations

import numpy as np
import pytest

from exceptions_queue.rules import (
    EXAMPLES_PER_GROUP,
    RuleConfig,
    data_quality,
    evaluate,
    margin_and_entropy,
)

CONF = "__confidence__"


def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_confidence_below_threshold_and_nan_is_not_low() -> None:
    found = evaluate(
        {CONF: np.array([0.59, 0.6, np.nan, 0.1])},
        None,
        RuleConfig(confidence_threshold=0.6),
        rng(),
    )
    assert found.low_confidence.positions.tolist() == [0, 3]
    assert found.low_confidence.confidence.tolist() == [0.59, 0.1]


def test_no_threshold_no_tickets() -> None:
    found = evaluate({CONF: np.array([0.01, 0.02])}, None, RuleConfig(), rng())
    assert found.low_confidence.positions.size == 0
    assert found.audit.size == 0


def test_margin_and_entropy_rules_name_the_first_rule_broken() -> None:
    probabilities = np.array(
        [
            [0.9, 0.05, 0.05],  # confident
            [0.45, 0.44, 0.11],  # small margin
            [0.34, 0.33, 0.33],  # small margin, high entropy, low confidence
            [0.5, 0.25, 0.25],  # margin 0.25 ok, entropy 1.04 > 1.0
        ]
    )
    cfg = RuleConfig(confidence_threshold=0.4, margin_threshold=0.1, entropy_threshold=1.0)
    found = evaluate({CONF: probabilities.max(axis=1)}, probabilities, cfg, rng())
    assert found.low_confidence.positions.tolist() == [1, 2, 3]
    assert found.low_confidence.rules == ("margin", "confidence", "entropy")


def test_margin_and_entropy_values() -> None:
    margin, entropy = margin_and_entropy(np.array([[0.5, 0.5], [1.0, 0.0], [0.7, 0.3]]))
    assert margin.tolist() == pytest.approx([0.0, 1.0, 0.4])
    assert entropy.tolist() == pytest.approx(
        [np.log(2), 0.0, -(0.7 * np.log(0.7) + 0.3 * np.log(0.3))]
    )


def test_audit_samples_only_confident_predictions_at_the_rate() -> None:
    n = 20_000
    confidence = np.where(np.arange(n) % 2 == 0, 0.9, 0.1)
    cfg = RuleConfig(confidence_threshold=0.5, audit_rate=0.1)
    found = evaluate({CONF: confidence}, None, cfg, rng())
    assert set(found.audit.tolist()).isdisjoint(found.low_confidence.positions.tolist())
    assert (confidence[found.audit] == 0.9).all()
    assert found.audit.size / (n / 2) == pytest.approx(0.1, abs=0.01)
    # the draw is seeded: the same batch picks the same records
    again = evaluate({CONF: confidence}, None, cfg, rng())
    assert again.audit.tolist() == found.audit.tolist()


def test_data_quality_needs_a_reference_except_for_required_features() -> None:
    columns = {
        "age": np.array([np.nan, 1e9, 30.0]),
        "plan": np.array(["pro", "gold", None], dtype=object),
    }
    found = data_quality(columns, RuleConfig(required=("plan",)))
    assert [(b.feature, b.rule, b.positions.tolist()) for b in found] == [
        ("plan", "missing_required", [2])
    ]


def test_out_of_range_tolerance_scales_with_the_reference_range() -> None:
    column = np.array([0.0, -5.0, -5.1, 15.0, 15.1, np.nan])
    cfg = RuleConfig(ranges={"x": (0.0, 10.0)}, out_of_range_tolerance=0.5)
    [brk] = data_quality({"x": column}, cfg)
    assert brk.positions.tolist() == [2, 4]
    assert brk.examples == (-5.1, 15.1)


def test_constant_reference_feature_still_has_a_range() -> None:
    cfg = RuleConfig(ranges={"x": (3.0, 3.0)}, out_of_range_tolerance=1.0)
    [brk] = data_quality({"x": np.array([3.0, 5.9, 6.1, -0.1])}, cfg)
    assert brk.positions.tolist() == [2, 3]


def test_examples_are_capped_but_positions_are_not() -> None:
    column = np.array(["x"] * 50, dtype=object)
    [brk] = data_quality({"c": column}, RuleConfig(categories={"c": frozenset({"a"})}))
    assert brk.positions.size == 50
    assert len(brk.examples) == EXAMPLES_PER_GROUP


def test_internal_columns_are_not_features() -> None:
    cols = {CONF: np.array([np.nan]), "__prediction__": np.array([None], dtype=object)}
    assert data_quality(cols, RuleConfig(required=(CONF,))) == ()
