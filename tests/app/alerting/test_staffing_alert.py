"""queue.staffing: fires before a forecast SLA breach, says who would hold it, resolves."""

from __future__ import annotations

import datetime as dt
import json

from fastapi.testclient import TestClient

from app.alerting.rules import run_alert_rules
from app.db import Database
from app.settings import Settings
from storage.base import utcnow
from tests.app.workforce.helpers import make_model, open_at, work

from .conftest import Receiver, add_webhook, alerts, drain


def firing(client: TestClient) -> dict[str, str]:
    return {a["rule"]: a["status"] for a in reversed(alerts(client))}


def test_staffing_alert_fires_before_the_breach_and_resolves_with_more_reviewers(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    churn = make_model(client, db)
    add_webhook(client, http_receiver)
    now = utcnow().replace(microsecond=0)
    # 20 drift tickets (SLA 4 h) waiting for 3.5 h; one reviewer, 10 minutes a ticket
    open_at(db, churn["id"], now - dt.timedelta(hours=3.5), 20, kind="drift")
    work(db, "ana", now - dt.timedelta(minutes=12), 10)
    assert run_alert_rules(db, settings, now=now) == 1
    assert firing(client) == {"queue.staffing": "firing"}  # nothing is late yet
    [alert] = alerts(client, rule="queue.staffing")
    # ana claims one at once; at 6 an hour the other 18 cannot all be claimed within 30 min
    assert alert["summary"].startswith(
        "Forecast: the oldest waiting drift ticket of churn breaches its 4 h SLA in 30 min "
        "at 1 reviewer; "
    )
    fields = {f["name"]: f["value"] for f in alert["fields"]}
    needed = int(fields["reviewers needed"])
    # 19 waiting: five reviewers claim five at once and the other 14 within 30 min (30/h)
    assert needed == 5
    assert fields["reviewers now"] == "1" and fields["breach in"] == "30 min"
    assert run_alert_rules(db, settings, now=now) == 0  # still firing: nothing new

    # a shorter lead time than the breach: no alert would have fired
    calm = settings.model_copy(update={"workforce_lead_time_seconds": 600.0})
    later = now + dt.timedelta(seconds=1)
    # the team arrives: as many reviewers as the alert asked for, each just finished one
    for i in range(needed - 1):
        work(db, f"rev{i}", later - dt.timedelta(minutes=11), 10)
    assert run_alert_rules(db, settings, now=later) == 1
    assert firing(client) == {"queue.staffing": "resolved"}
    assert run_alert_rules(db, calm, now=later) == 0

    drain(db, settings, now=later)
    bodies = [json.loads(r.body) for r in http_receiver.requests]
    assert [b["type"] for b in bodies] == ["queue.staffing.at_risk", "queue.staffing.held"]
    assert "1 reviewer;" in bodies[0]["data"]["summary"]
    assert bodies[0]["data"]["dedup_key"] == bodies[1]["data"]["dedup_key"]


def test_no_alert_without_a_measured_handle_time_or_a_breach_in_sight(
    client: TestClient, db: Database, settings: Settings
) -> None:
    churn = make_model(client, db)
    now = utcnow()
    open_at(db, churn["id"], now - dt.timedelta(hours=3.5), 5, kind="drift")
    assert run_alert_rules(db, settings, now=now) == 0  # no handle time: no forecast
    work(db, "ana", now - dt.timedelta(minutes=5), 2)  # 30 an hour: the rest in 8 min
    assert run_alert_rules(db, settings, now=now) == 0
    assert alerts(client) == []
