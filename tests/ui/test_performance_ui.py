"""The performance chart on a model's dashboard and the audit panel of the queue, in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.performance.incidents import run_due
from tests.app.performance.helpers import (
    feedback,
    post,
    resolve_with_truth,
    setup_model,
    simulate,
)
from tests.ui.conftest import DESKTOP, Live, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def seeded(live: Live) -> Live:
    """Three windows: one good, two where the world moved; ground truth for half of each,
    reviewers' labels on every ticket; the evaluator after each (an incident opens)."""
    setup_model(
        live.api,
        window={"kind": "count", "size": 200, "step": 200},
        performance={"metric": "accuracy", "min": 0.75},
        confidence_threshold=0.56,
        options={"audit_rate": 0.1, "incident_open_after": 2, "incident_of_last": 3},
    )
    for i, shift in enumerate((0.0, 4.0, 4.0)):
        # small windows: every ticket is claimed and resolved over HTTP, on both databases
        records, truth = simulate(200, seed=300 + i, concept_shift=shift, prefix=f"u{i}")
        post(live.api, records)
        feedback(live.api, records[:100], truth[:100])
        resolve_with_truth(
            live.api,
            {"Authorization": f"Bearer {live.key('rev', 'review')}"},
            {r["id"]: t for r, t in zip(records, truth, strict=True)},
        )
        run_due(live.db, live.settings)
    return live


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=DESKTOP)
    yield ctx
    ctx.close()


def test_dashboard_draws_the_performance_chart(seeded: Live, context: Any, tmp_path: Path) -> None:
    page = context.new_page()
    sign_in(page, seeded.url, seeded.key("pia", "review"), next_path="/ui/models/churn")
    section = page.locator("section#performance")
    assert "Performance" in section.locator("h2").inner_text()
    chart = section.locator("svg.chart.performance")
    assert chart.count() == 1
    assert chart.locator("polygon.band.estimated").count() == 1  # the estimate's band
    assert chart.locator("polyline.series.estimated").count() == 1
    assert chart.locator("circle.point.audited").count() == 3  # one per window
    assert chart.locator("line.errorbar.audited").count() == 3
    assert chart.locator("polyline.series.realized").count() == 1
    assert chart.locator("line.reference").count() == 1
    assert chart.locator("line.floor").count() == 1
    assert chart.locator("rect.incident").count() == 1  # the open incident, shaded
    labels = chart.locator("text.axis-label").all_text_contents()
    assert "accuracy" in labels and any("window" in t for t in labels)
    assert chart.locator("text.tick").count() >= 5  # y ticks and the first/last window
    assert "audited" in (
        chart.locator("circle.point.audited").first.locator("title").text_content() or ""
    )
    table = section.locator("table")
    assert table.locator("tbody tr").count() == 3
    assert table.locator(".badge", has_text="degraded").count() >= 1
    page.screenshot(path=str(tmp_path / "performance.png"), full_page=True)


def test_queue_shows_what_the_labels_measure(seeded: Live, context: Any) -> None:
    page = context.new_page()
    sign_in(page, seeded.url, seeded.key("quinn", "review"), next_path="/ui/queue?model=churn")
    panel = page.locator("section.audits")
    text = panel.inner_text()
    latest = seeded.api.get("/v1/models/churn/performance", params={"limit": 1}).json()["items"][0]
    labels = latest["audited_labels"]
    audited = latest["metrics"]["accuracy"]["audited"]
    assert labels > 0 and f"{labels}" in text
    assert "labels for churn's accuracy" in text
    assert "interval width" in text
    width = audited["ci_high"] - audited["ci_low"]
    assert f"{width:.3f}"[:4] in text
