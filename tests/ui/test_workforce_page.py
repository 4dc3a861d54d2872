"""The Workforce page in headless Chromium against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from exceptions_queue import service as queue
from exceptions_queue.tables import Ticket
from storage.base import utcnow
from storage.tables import MonitoredModel
from tests.app.workforce.helpers import open_at, work
from tests.factories import model_body
from tests.ui.conftest import PHONE, Live, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def seeded(live: Live) -> Live:
    """Drift tickets arriving faster than two reviewers finish them; one second review."""
    r = live.api.post("/v1/models", json=model_body(name="churn"))
    assert r.status_code == 201, r.text
    with live.db.session() as s:
        model_id = s.scalar(select(MonitoredModel.id).where(MonitoredModel.name == "churn"))
    assert model_id is not None
    now = utcnow()
    for i in range(30):
        open_at(live.db, model_id, now - dt.timedelta(minutes=30 - i), 1, kind="drift")
    checked = work(live.db, "ana", now - dt.timedelta(minutes=25), 6)
    for j in range(1, 3):
        work(live.db, "ana", now - dt.timedelta(minutes=25 - 6 * j), 6)
    work(live.db, "bob", now - dt.timedelta(minutes=20), 12)
    with live.db.session() as s:  # bob's independent second review agreed with ana's label
        queue.open_tickets(
            s,
            model_id=model_id,
            candidates=[
                queue.NewTicket(
                    kind="second_review",
                    group_key=f"review:{checked}",
                    reason="second review",
                    details={},
                    subject_ticket_id=checked,
                )
            ],
            now=now - dt.timedelta(minutes=5),
        )
        s.execute(
            update(Ticket)
            .where(Ticket.kind == "second_review")
            .values(
                status="resolved",
                qc_agreed=True,
                resolved_by="bob",
                resolved_by_name="bob",
                claimed_at=now - dt.timedelta(minutes=4),
                resolved_at=now - dt.timedelta(minutes=2),
            )
        )
    return live


def test_workforce_page_draws_inflow_capacity_backlog_and_staffing(
    seeded: Live, context: Any, tmp_path: Path
) -> None:
    page = context.new_page()
    sign_in(page, seeded.url, seeded.key("fay", "review"), next_path="/ui/workforce")
    assert page.url.endswith("/ui/workforce")
    assert page.get_by_role("link", name="Workforce").get_attribute("aria-current") == "page"
    verdict = page.locator("#verdict").inner_text()
    assert "breaches its 4 h SLA" in verdict and "hold it" in verdict
    flow = page.locator("section", has=page.get_by_role("heading", name="Inflow against capacity"))
    assert flow.locator("svg rect.bar").count() == 72  # 48 past hours and 24 forecast
    assert flow.locator("svg line.now").count() == 1
    assert "tickets / hour" in flow.locator("svg text.axis-title").all_text_contents()
    backlog = page.locator("section", has=page.get_by_role("heading", name="Backlog forecast"))
    assert backlog.locator("svg polygon.band").count() == 1
    assert backlog.locator("svg polyline.series").count() == 1
    assert "waiting tickets" in backlog.locator("svg text.axis-title").all_text_contents()
    assert backlog.locator("tbody tr").count() == 3  # +1 h, +4 h, +24 h
    staffing = page.locator(
        "section", has=page.get_by_role("heading", name="Reviewers needed per hour")
    )
    assert staffing.locator("svg rect.bar").count() == 24
    assert "reviewers" in staffing.locator("svg text.axis-title").all_text_contents()
    rows = page.locator("#reviewers tbody tr")
    assert rows.count() == 2
    ana = page.locator("#reviewers tr", has_text="ana").inner_text()
    assert "100% of 1" in ana and "6m" in ana
    page.screenshot(path=str(tmp_path / "workforce.png"), full_page=True)
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the workforce page is {width} px wide on a phone"
