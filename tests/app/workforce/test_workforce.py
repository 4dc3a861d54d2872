"""GET /v1/workforce: rates, handle times, reviewers and the forecast, from real tickets."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import Database
from app.settings import Settings
from app.workforce import service as workforce
from exceptions_queue.tables import TicketVolume
from tests.app.workforce.helpers import make_model, open_at, work
from tests.factories import make_key

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def churn(client: TestClient, db: Database) -> dict[str, Any]:
    return make_model(client, db)


def test_rates_handle_times_reviewers_and_first_claims(
    db: Database, settings: Settings, churn: dict[str, Any]
) -> None:
    mid = churn["id"]
    # 30 drift tickets (SLA 4 h) over the last 30 minutes and none before: a change of rate
    # half an hour ago, so the rate since it, 60 per hour (not the two hours' 15)
    for i in range(30):
        open_at(db, mid, NOW - dt.timedelta(minutes=29.5 - i), 1, kind="drift")
    # two reviewers: ana works 6-minute tickets, bob 12-minute ones, within the last hour
    for j in range(4):
        work(db, "ana", NOW - dt.timedelta(minutes=28 - 6 * j), 6)
    for j in range(2):
        work(db, "bob", NOW - dt.timedelta(minutes=27 - 12 * j), 12)
    w = workforce.workforce(db_session(db), now=NOW, settings=settings)
    assert [(a.model, a.kind, a.basis) for a in w.arrivals] == [("churn", "drift", "recent")]
    assert w.arrivals[0].per_hour == pytest.approx(60.0)
    assert w.arrivals_per_hour == pytest.approx(60.0)
    (h,) = w.handle_times
    assert h.finished == 6
    assert h.median_seconds == pytest.approx(360.0)
    assert h.mean_seconds == pytest.approx((4 * 360 + 2 * 720) / 6)
    by_name = {r.name: r for r in w.reviewers}
    assert by_name["ana"].median_handle_seconds == pytest.approx(360.0)
    assert by_name["bob"].finished_last_hour == 2
    assert w.active_reviewers == 2 and by_name["ana"].active and by_name["bob"].active
    assert w.throughput_per_hour == 6
    assert w.waiting == 24 and w.held == 0
    (fc,) = w.time_to_first_claim
    assert fc.claimed == 6
    # the forecast: 2 reviewers × (3600/480 s) = 15 per hour against 60 arriving
    f = w.forecast
    assert f is not None
    assert f.reviewers == 2
    assert f.service_rate_per_hour == pytest.approx(3600 / 480)
    assert not f.holds_sla
    assert f.reviewers_needed_now >= 9  # a = 60 / 7.5 = 8 reviewers' worth of work
    # the two idle reviewers claim two at once; then FIFO at 15/h: a ticket arriving in
    # s hours is claimed at (22 + 60 s)/15, so it waits 4 h when s = 38/45
    (b,) = f.breaches
    s = 38 / 45
    assert b.in_minutes == pytest.approx((s + 4) * 60, rel=0.01)
    assert b.ticket_created_at is not None
    assert (b.ticket_created_at - NOW).total_seconds() / 3600 == pytest.approx(s, abs=0.02)
    assert f.breaches_by_priority[0].priority == 100
    # the waiting backlog grows by about 45 an hour
    assert [p.hours for p in f.backlog] == [1.0, 4.0, 24.0]
    assert f.backlog[1].expected == pytest.approx(24 + 4 * 45, rel=0.15)
    assert f.backlog[1].low < f.backlog[1].expected < f.backlog[1].high
    assert len(f.plan) == 24 and f.plan[0].reviewers_needed == 9


def db_session(db: Database) -> Any:
    return db.sessionmaker()


def test_no_finished_ticket_means_no_forecast_yet(
    db: Database, settings: Settings, churn: dict[str, Any]
) -> None:
    open_at(db, churn["id"], NOW - dt.timedelta(minutes=5), 3)
    w = workforce.workforce(db_session(db), now=NOW, settings=settings)
    assert w.forecast is None
    assert w.forecast_unavailable is not None and "handle time" in w.forecast_unavailable


def test_a_week_of_history_gives_an_hour_of_week_profile(
    db: Database, settings: Settings, churn: dict[str, Any]
) -> None:
    mid = churn["id"]
    # eight days of hourly counts: 10 an hour at night (hours 0-7), 40 by day
    start = NOW.replace(hour=0) - dt.timedelta(days=8)
    with db.session() as s:
        hour = start
        while hour < NOW.replace(minute=0):
            s.add(
                TicketVolume(
                    model_id=mid,
                    hour=hour,
                    kind="low_confidence",
                    opened=10 if hour.hour < 8 else 40,
                    suppressed=0,
                )
            )
            hour += dt.timedelta(hours=1)
    # the current hour (12:00, a day hour) runs at double the profile: 80 an hour
    for i in range(40):
        open_at(db, mid, NOW - dt.timedelta(minutes=29) + dt.timedelta(seconds=40 * i), 1, tag="p")
    work(db, "ana", NOW - dt.timedelta(minutes=10), 5)
    w = workforce.workforce(db_session(db), now=NOW, settings=settings)
    (a,) = w.arrivals
    assert a.basis == "hour_of_week"
    assert a.recent_per_hour == pytest.approx(80.0)
    # scaled ×2: 80 by day; at night (hours 0-7, i.e. 12 to 19 hours from noon) 20
    assert a.next_24h[0] == pytest.approx(80.0)
    assert a.next_24h[5] == pytest.approx(80.0)
    assert a.next_24h[12] == pytest.approx(20.0)
    assert a.next_24h[19] == pytest.approx(20.0)
    assert a.next_24h[20] == pytest.approx(80.0)


def test_endpoint_scopes_errors_and_metrics(
    client: TestClient, db: Database, churn: dict[str, Any]
) -> None:
    from storage.base import utcnow

    now = utcnow()
    open_at(db, churn["id"], now - dt.timedelta(minutes=20), 5)
    work(db, "ana", now - dt.timedelta(minutes=10), 4)
    review = make_key(client, "review", name="reviewer")
    ingest = make_key(client, "ingest", name="model")
    r = client.get("/v1/workforce", headers=review)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["waiting"] == 4
    assert body["forecast"]["reviewers"] == 1
    assert len(body["forecast"]["plan"]) == 24
    assert (
        client.get("/v1/workforce?model=churn&kind=low_confidence", headers=review).status_code
        == 200
    )
    assert client.get("/v1/workforce?kind=drift", headers=review).json()["arrivals"] == []
    bad = client.get("/v1/workforce?kind=nonsense", headers=review)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    missing = client.get("/v1/workforce?model=nope", headers=review)
    assert missing.status_code == 404 and "GET /v1/models" in missing.json()["error"]["message"]
    assert client.get("/v1/workforce", headers=ingest).status_code == 403
    assert client.get("/v1/workforce", headers={"Authorization": "Bearer nope"}).status_code == 401
    metrics = client.get("/metrics").text
    assert "driftdesk_workforce_active_reviewers 1.0" in metrics
    assert 'driftdesk_workforce_arrivals_per_hour{model="churn",kind="low_confidence"}' in metrics
    assert "# TYPE driftdesk_workforce_reviewers_needed gauge" in metrics
