"""The Evidently report renders offline, for exactly the columns asked for."""

from __future__ import annotations

import base64
import hashlib
import json
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
    ).html
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


HOSTILE = "</script><script>alert(document.domain)</script><img src=x onerror=alert(1)>&amp;"


def test_hostile_values_stay_inside_the_data_script() -> None:
    reference, current = frames()
    current["plan_tier"] = [HOSTILE if i % 3 == 0 else "pro" for i in range(len(current))]
    report = build_report(reference, current, numerical=["tenure_days"], categorical=["plan_tier"])
    assert HOSTILE not in report.html and "alert(" in report.html
    scripts = re.findall(r"<script>(.*?)</script>", report.html, re.DOTALL)
    # Every inline script is one the policy names, and no other runs.
    digests = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    ]
    assert digests == list(report.script_hashes)
    assert all(h in report.content_security_policy for h in digests)
    assert "sandbox allow-scripts" in report.content_security_policy
    # The data script decodes back to the very same values.
    data = re.search(r"var (metric_\w+) = (.*);\nvar additional_graphs_", scripts[0], re.DOTALL)
    assert data is not None and "<" not in scripts[0] and "&" not in scripts[0]
    assert HOSTILE in json.dumps(json.loads(data.group(2)))
