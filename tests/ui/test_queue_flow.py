"""The queue as a reviewer works it, in headless Chromium, on SQLite and PostgreSQL: the list
in claim order, the filters kept through labels and `r`, undo that gives back the ticket the
UI claimed, and drift charts that can be read without hovering."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.drift import service as drift_service
from tests.factories import create_model_with_reference, predictions
from tests.ui.conftest import DESKTOP, Live, sign_in
from tests.ui.seed import low_confidence, post
from tests.ui.test_browser import ticket_id
from tests.ui.test_browser import ticket_row as row

pytestmark = pytest.mark.browser

WAITING = 60  # low-confidence tickets, more than a page (50), all older than the drift ticket


@pytest.fixture(scope="module")
def seeded(live: Live) -> Live:
    create_model_with_reference(live.api)  # type: ignore[arg-type]
    post(live.api, low_confidence(WAITING))  # type: ignore[arg-type]
    post(live.api, predictions(1000, seed=11))  # type: ignore[arg-type]
    drift_service.run_due_evaluations(live.db, live.settings)
    post(live.api, predictions(1000, seed=12, prefix="shift", age_shift=15.0))  # type: ignore[arg-type]
    drift_service.run_due_evaluations(live.db, live.settings)
    return live


@pytest.fixture
def page(browser: Any, seeded: Live) -> Iterator[Any]:
    ctx = browser.new_context(viewport=DESKTOP)
    yield ctx.new_page()
    ctx.close()


def press(page: Any, key: str) -> None:
    with page.expect_navigation():
        page.keyboard.press(key)


def test_the_queue_lists_tickets_in_the_order_claim_next_hands_them_out(
    seeded: Live, page: Any
) -> None:
    sign_in(page, seeded.url, seeded.key("order", "review"), next_path="/ui/queue")
    first_row = page.locator("table tbody tr").first.inner_text()
    assert "drift" in first_row, first_row  # priority 100, though the newest
    listed = page.locator("table tbody tr").first.locator("a").first.get_attribute("href")
    press(page, "n")  # Claim next: the ticket at the top of page 1
    assert listed and page.url.endswith(listed), (listed, page.url)
    assert row(seeded, ticket_id(page)).kind == "drift"

    # the drift ticket's charts are labelled: axes, and bins under their bars
    chart = page.locator("svg.histogram").first
    assert chart.is_visible()
    ticks = chart.locator("text.category").all_text_contents()
    assert len(ticks) >= 3 and all(t.strip() for t in ticks), ticks
    assert ticks[0].startswith("<") and ticks[-1].startswith(">"), ticks  # under/overflow bins
    axes = chart.locator("text.axis-label").all_text_contents()
    assert "rows" in axes and any("age" in a for a in axes), axes
    assert any(t.endswith("%") for t in chart.locator("text.tick").all_text_contents())

    page.goto(seeded.url + "/ui/queue?status=open")  # page 2 continues in the same order
    page.locator("a[rel=next]").click()
    page.wait_for_load_state()
    rows = page.locator("table tbody tr").all_inner_texts()
    assert rows and all("low confidence" in r for r in rows), rows


def test_labels_and_r_keep_the_filters_and_undo_gives_back_the_next_ticket(
    seeded: Live, page: Any
) -> None:
    sign_in(page, seeded.url, seeded.key("filters", "review"), next_path="/ui/queue")
    press(page, "n")  # no filter: a higher-priority ticket, which this reviewer now holds
    held_outside = ticket_id(page)
    assert row(seeded, held_outside).kind != "low_confidence"

    page.goto(seeded.url + "/ui/queue?kind=low_confidence&model=churn")
    press(page, "n")  # claimed under the filter
    first = ticket_id(page)
    assert row(seeded, first).kind == "low_confidence"

    press(page, "1")  # label: the next ticket opens, within the filter (not the one held)
    second = ticket_id(page)
    assert second not in (first, held_outside)
    assert row(seeded, second).kind == "low_confidence"
    assert row(seeded, second).status == "claimed"

    press(page, "u")  # undo the label: back on the first ticket, the second goes back
    assert ticket_id(page) == first
    assert row(seeded, first).status == "claimed"
    given_back = row(seeded, second)
    assert given_back.status == "open" and given_back.claimed_by is None
    assert page.get_by_text(f"Ticket {second} went back to the queue").is_visible()

    press(page, "r")  # release: back to the queue with the filters claimed under
    assert page.url.endswith("/ui/queue?model=churn&kind=low_confidence"), page.url
    assert page.locator("#f-kind").input_value() == "low_confidence"
    assert page.locator("#f-model").input_value() == "churn"
    assert row(seeded, first).status == "open"
    assert row(seeded, held_outside).status == "claimed"  # never touched by the flow
