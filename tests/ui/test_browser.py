"""The reviewers' UI in headless Chromium against a real server, on SQLite and PostgreSQL.

One server per backend for the module (seeded once: a model, a drift incident
with its ticket, a data-quality group and low-confidence tickets); each test
signs in its own reviewer in a fresh browser context.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from exceptions_queue.tables import Label, Ticket, TicketEvent
from storage.base import utcnow
from tests.conftest import ADMIN_SECRET
from tests.ui.conftest import DESKTOP, PHONE, Live, csrf_of, sign_in
from tests.ui.seed import low_confidence, post, seed_traffic

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def seeded(live: Live) -> Live:
    seed_traffic(live.api, live.db, live.settings, tickets=6)  # type: ignore[arg-type]
    return live


def shot(page: Any, tmp_path: Path, name: str, *, phone: bool = False) -> Path:
    if phone:
        page.set_viewport_size(PHONE)
    path = tmp_path / f"{name}{'-phone' if phone else ''}.png"
    page.screenshot(path=str(path), full_page=True)
    if phone:  # nothing sticks out sideways: tables scroll inside their own box
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} is {width} px wide on a phone"
    if phone:
        page.set_viewport_size(DESKTOP)
    return path


def ticket_id(page: Any) -> int:
    m = re.search(r"/ui/tickets/(\d+)$", page.url)
    assert m, page.url
    return int(m.group(1))


def ticket_row(live: Live, tid: int) -> Ticket:
    with live.db.session(readonly=True) as s:
        row = s.get(Ticket, tid)
        assert row is not None
        return row


def claim_kind(page: Any, kind: str) -> int:
    """Filter the queue to one kind and press n (claim next)."""
    page.goto(page.url.split("/ui/")[0] + f"/ui/queue?kind={kind}&status=open")
    with page.expect_navigation():
        page.keyboard.press("n")
    return ticket_id(page)


def test_sign_in_claim_label_with_keyboard_and_undo(
    seeded: Live, context: Any, tmp_path: Path
) -> None:
    page = context.new_page()
    secret = seeded.key("ana", "review")
    page.goto(seeded.url + "/ui/")
    assert "/ui/login" in page.url  # signed out: the sign-in page, then back
    shot(page, tmp_path, "login", phone=True)
    sign_in(page, seeded.url, secret)
    assert page.url.endswith("/ui/queue")
    assert page.get_by_role("button", name=re.compile("Claim next")).is_visible()
    shot(page, tmp_path, "queue")
    shot(page, tmp_path, "queue", phone=True)

    first = claim_kind(page, "low_confidence")
    held = ticket_row(seeded, first)
    assert held.status == "claimed" and held.claimed_by_name and "ana" in held.claimed_by_name
    assert page.locator("#lease").inner_text() != ""
    shot(page, tmp_path, "ticket")
    shot(page, tmp_path, "ticket", phone=True)

    with page.expect_navigation():
        page.keyboard.press("1")  # label 1 ("stay"): resolves, and the next ticket opens at once
    second = ticket_id(page)
    assert second != first
    assert ticket_row(seeded, second).kind == "low_confidence"  # the filter is kept
    assert page.get_by_text(f"Ticket {first} resolved as stay").is_visible()

    with seeded.db.session(readonly=True) as s:
        done = s.get(Ticket, first)
        assert done is not None and done.status == "resolved"
        assert done.resolution is not None and done.resolution["label"] == "stay"
        labels = s.scalars(select(Label).where(Label.ticket_id == first)).all()
        assert [(lab.label, lab.status) for lab in labels] == [("stay", "current")]
        actions = s.scalars(
            select(TicketEvent.action)
            .where(TicketEvent.ticket_id == first)
            .order_by(TicketEvent.id)
        ).all()
    assert actions[0] == "open" and actions[-2:] == ["claim", "resolve"]

    with page.expect_navigation():
        page.keyboard.press("u")  # undo: the resolved ticket is held again, its label retracted
    assert page.url.endswith(f"/ui/tickets/{first}")
    assert ticket_row(seeded, first).status == "claimed"
    history = page.locator("ol.events").inner_text()
    assert "resolve" in history and "reopen" in history
    with seeded.db.session(readonly=True) as s:
        statuses = s.scalars(select(Label.status).where(Label.ticket_id == first)).all()
    assert list(statuses) == ["retracted"]

    page.keyboard.press("d")  # d: to the dismiss reason; Enter sends it
    page.keyboard.type("test traffic")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    gone = ticket_row(seeded, first)
    assert gone.status == "dismissed" and gone.resolution == {"reason": "test traffic"}
    assert ticket_id(page) == second  # the ticket still held comes next

    with page.expect_navigation():
        page.keyboard.press("r")  # r: release back to the queue, with the filters claimed under
    assert page.url.endswith("/ui/queue?kind=low_confidence")
    assert ticket_row(seeded, second).status == "open"


def test_drift_ticket_charts_and_sample_labelled_in_one_go(
    seeded: Live, context: Any, tmp_path: Path
) -> None:
    page = context.new_page()
    sign_in(page, seeded.url, seeded.key("ben", "review"))
    tid = claim_kind(page, "drift")
    charts = page.locator("svg.histogram")
    assert charts.count() >= 1  # the drifted features: reference vs window
    assert charts.first.locator("rect.ref").count() > 0
    assert charts.first.locator("rect.win").count() > 0
    selects = page.locator("[data-sample-select]")
    n = selects.count()
    assert n > 0
    shot(page, tmp_path, "drift-ticket")
    selects.first.focus()
    for i in range(3):  # a digit labels the focused row and moves to the next
        page.keyboard.press("2" if i % 2 else "1")
    page.get_by_role("button", name="Resolve with these labels").click()
    page.wait_for_load_state()
    with seeded.db.session(readonly=True) as s:
        ticket = s.get(Ticket, tid)
        assert ticket is not None and ticket.status == "resolved"
        labels = s.scalars(select(Label.label).where(Label.ticket_id == tid).order_by(Label.id))
        assert list(labels) == ["stay", "churn", "stay"][: min(3, n)]


def test_a_second_reviewer_cannot_act_on_a_held_ticket(
    seeded: Live, browser: Any, context: Any
) -> None:
    post(seeded.api, low_confidence(2, seed=77, prefix="held"))  # type: ignore[arg-type]
    holder = context.new_page()
    sign_in(holder, seeded.url, seeded.key("cleo", "review"))
    tid = claim_kind(holder, "low_confidence")

    other_ctx = browser.new_context(viewport=DESKTOP)
    try:
        other = other_ctx.new_page()
        sign_in(other, seeded.url, seeded.key("dan", "review"))
        other.goto(f"{seeded.url}/ui/tickets/{tid}")
        assert "Held by" in other.locator("aside.actions").inner_text()
        assert other.locator("#resolve-form").count() == 0
        other.keyboard.press("1")  # no label buttons for a ticket someone else holds
        other.keyboard.press("r")
        assert other.url.endswith(f"/ui/tickets/{tid}")
        # forging the holder's form (with dan's own valid CSRF token) is refused by the queue
        token = csrf_of(other.content())
        status = other.evaluate(
            """async ([url, token]) => {
                const r = await fetch(url, {method: 'POST', body: new URLSearchParams(
                    {csrf: token, label: 'churn'})});
                return r.url;
            }""",
            [f"{seeded.url}/ui/tickets/{tid}/resolve", token],
        )
        assert status.endswith(f"/ui/tickets/{tid}")
        other.goto(f"{seeded.url}/ui/tickets/{tid}")
        assert "held by another reviewer" in other.content() or "Held by" in other.content()
    finally:
        other_ctx.close()
    row = ticket_row(seeded, tid)
    assert row.status == "claimed" and row.claimed_by_name and "cleo" in row.claimed_by_name


def test_lease_countdown_is_renewed_by_the_heartbeat(seeded: Live, context: Any) -> None:
    post(seeded.api, low_confidence(1, seed=78, prefix="beat"))  # type: ignore[arg-type]
    page = context.new_page()
    sign_in(page, seeded.url, seeded.key("eve", "review"))
    tid = claim_kind(page, "low_confidence")
    before = ticket_row(seeded, tid).lease_expires_at
    assert before is not None
    assert re.fullmatch(r"\d+:\d\d", page.locator("#lease").inner_text())
    page.wait_for_timeout(1100)
    result = page.evaluate("window.driftdesk.heartbeat()")
    assert result["seconds_left"] == seeded.settings.default_lease_seconds
    after = ticket_row(seeded, tid).lease_expires_at
    assert after is not None and after > before
    assert after > utcnow()


def test_dashboard_draws_its_charts(seeded: Live, context: Any, tmp_path: Path) -> None:
    page = context.new_page()
    sign_in(page, seeded.url, seeded.key("fay", "review"), next_path="/ui/models/churn")
    assert page.url.endswith("/ui/models/churn")
    trends = page.locator("figure.trend svg.chart")
    assert trends.count() >= 4  # age, income, plan, and the outputs
    assert page.locator("figure.trend svg polyline.series").count() >= 4
    assert page.locator("svg circle.point.drifted").count() > 0  # the drifted window
    assert page.locator("svg rect.incident").count() > 0  # the incident shaded
    for heading in ("Predictions over time", "Confidence over time", "Ingest volume"):
        section = page.locator("section", has=page.get_by_role("heading", name=heading))
        assert section.locator("svg rect, svg polyline").count() > 0, heading
    assert page.locator("svg rect.bar:not([height='0'])").count() > 0  # ingest volume
    assert "Review queue" in page.content()
    report = page.get_by_role("link", name=re.compile("Evidently report")).first
    assert "/evaluations/" in (report.get_attribute("href") or "")
    shot(page, tmp_path, "dashboard")
    shot(page, tmp_path, "dashboard", phone=True)


def test_admin_creates_a_key_whose_secret_is_shown_once_then_revokes_it(
    seeded: Live, context: Any, tmp_path: Path
) -> None:
    page = context.new_page()
    sign_in(page, seeded.url, ADMIN_SECRET, next_path="/ui/admin/keys")
    page.get_by_label("Name").fill("reviewer-gus")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Secret").input_value()
    assert secret.startswith("dd_")
    shot(page, tmp_path, "keys")
    page.goto(seeded.url + "/ui/admin/keys")
    assert secret not in page.content()  # never shown again
    r = seeded.api.get("/v1/tickets/summary", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200
    page.once("dialog", lambda d: d.accept())
    row = page.locator("tr", has_text="reviewer-gus")
    row.get_by_role("button", name=re.compile("Revoke")).click()
    page.wait_for_load_state()
    r = seeded.api.get("/v1/tickets/summary", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 401
    for name, path in (
        ("models-admin", "/ui/admin/models/churn"),
        ("channels", "/ui/admin/alert-channels"),
        ("alerts", "/ui/alerts"),
    ):
        page.goto(seeded.url + path)
        assert page.locator("h1").count() == 1
        shot(page, tmp_path, name)
        shot(page, tmp_path, name, phone=True)
