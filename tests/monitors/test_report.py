"""The Evidently report renders offline, for exactly the columns asked for."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from monitors.report import build_report


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "tenure_days": rng.exponential(200.0, 300),
            "plan_tier": rng.choice(["free", "pro"], 300),
            "ignored": rng.normal(size=300),
        }
    )
    current = pd.DataFrame(
        {
            "tenure_days": rng.exponential(260.0, 200),
            "plan_tier": rng.choice(["free", "pro", "enterprise"], 200),  # a new category
            "ignored": rng.normal(size=200),
        }
    )
    return reference, current


def test_report_renders_the_columns_offline() -> None:
    reference, current = frames()
    page = build_report(
        reference,
        current,
        numerical=["tenure_days"],
        categorical=["plan_tier"],
        title="model <churn>",
    )
    assert page.lstrip().startswith("<!DOCTYPE html>")
    assert "tenure_days" in page
    assert "plan_tier" in page
    assert "<title>model &lt;churn&gt;</title>" in page
    # Everything inlined: no external scripts, styles or fonts.
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=[\"']?https?:", page)
    assert "url(data:font/ttf;base64," in page


def test_report_rejects_unknown_columns() -> None:
    reference, current = frames()
    with pytest.raises(KeyError, match="lacks columns"):
        build_report(reference, current, numerical=["nope"], categorical=[])
    with pytest.raises(ValueError, match="at least one"):
        build_report(reference, current, numerical=[], categorical=[])
