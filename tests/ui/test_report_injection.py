"""Hostile category values in the Evidently report run nothing, in real Chromium.

An ingest key posts categorical values built to break out of the report's data
script, to start markup, or to close attribute quotes; after an evaluation a
reviewer opens the report on both routes (the API's and the UI's copy). No
dialog opens, no injected script or handler runs, the report still renders,
and the values show as their own text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.factories import create_model_with_reference, predictions
from tests.ui.conftest import DESKTOP, Live, sign_in

pytestmark = pytest.mark.browser

# Each payload records that it ran in window.__xss (a sandboxed page may block
# alert() but not a script, so the dialog alone would prove nothing).
PAYLOADS = [
    "</script><script>window.__xss='script';alert(document.domain)</script>",
    "<img src=x onerror=\"window.__xss='img';alert(1)\">",
    "\"'><svg onload=\"window.__xss='svg';alert(2)\">",
    "'];window.__xss='string';alert(3);//",
    "<!--<script>window.__xss='comment'</script>",
    "<a href=\"javascript:window.__xss='link'\">hostile-link</a>",
]


@pytest.fixture(scope="module")
def evaluation(live: Live) -> int:
    create_model_with_reference(live.api)  # type: ignore[arg-type]
    ingest = {"Authorization": f"Bearer {live.key('hostile', 'ingest')}"}
    records = predictions(600, seed=41, prefix="hostile")
    for i, record in enumerate(records):
        record["features"]["plan"] = PAYLOADS[i % len(PAYLOADS)]
    r = live.api.post("/v1/models/churn/predictions", json={"predictions": records}, headers=ingest)
    assert r.status_code == 202, r.text
    r = live.api.post("/v1/models/churn/drift/evaluate")
    assert r.status_code == 200, r.text
    evaluation_id: int = r.json()["id"]
    return evaluation_id


@pytest.fixture
def watched(browser: Browser) -> Iterator[tuple[Any, list[str]]]:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page, dialogs
    context.close()


def assert_strict(csp: str) -> None:
    directives = dict((d.strip() + " ").split(" ", 1) for d in csp.split(";"))
    assert "sandbox" in directives, csp
    assert directives["sandbox"].split() == ["allow-scripts"], csp
    assert directives["default-src"].strip() == "'none'", csp
    sources = directives["script-src"].split()
    assert sources and all(s.startswith("'sha256-") for s in sources), csp


def assert_nothing_ran(page: Any, dialogs: list[str]) -> None:
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    assert (page.evaluate("window.__xss"), dialogs) == (None, [])
    # The report rendered (its own scripts ran) ...
    page.get_by_text("Data Drift Summary").wait_for(timeout=30_000)
    # ... and its distribution chart shows the hostile values as plain text.
    page.locator("tr", has_text="plan").locator("button").first.click()
    page.locator("svg text", has_text="window.__xss='img'").first.wait_for(timeout=30_000)
    labels = page.evaluate(
        "Array.from(document.querySelectorAll('svg text')).map(e => e.textContent)"
    )
    assert PAYLOADS[0] in labels and PAYLOADS[1] in labels, labels
    # Plotly draws <a href> in labels as links: following this one must run nothing.
    for link in page.locator("svg a", has_text="hostile-link").all():
        link.dispatch_event("click")
    page.wait_for_timeout(500)
    assert page.evaluate("window.__xss") is None
    assert dialogs == []


def test_the_api_report_runs_no_injected_script(
    live: Live, evaluation: int, watched: tuple[Any, list[str]]
) -> None:
    page, dialogs = watched
    reviewer = live.key("report-reader", "review")
    page.set_extra_http_headers({"Authorization": f"Bearer {reviewer}"})
    response = page.goto(f"{live.url}/v1/models/churn/drift/report?evaluation={evaluation}")
    assert response is not None and response.status == 200
    assert_nothing_ran(page, dialogs)
    assert_strict(response.headers.get("content-security-policy", ""))


def test_the_ui_report_runs_no_injected_script(
    live: Live, evaluation: int, watched: tuple[Any, list[str]]
) -> None:
    page, dialogs = watched
    sign_in(page, live.url, live.key("report-viewer", "review"))
    response = page.goto(f"{live.url}/ui/models/churn/evaluations/{evaluation}/report")
    assert response is not None and response.status == 200
    assert_nothing_ran(page, dialogs)
    assert_strict(response.headers.get("content-security-policy", ""))
