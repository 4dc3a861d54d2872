"""From degraded windows to performance.degraded on a webhook, Slack and email, then recovered."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi.testclient import TestClient

from app.db import Database
from app.performance.incidents import run_due
from app.settings import Settings
from tests.app.performance.helpers import feedback, post, setup_model, simulate

from .conftest import WEBHOOK_SECRET, Receiver, SmtpServer, drain
from .test_drift_alerts import alert_deliveries, by_path, three_channels
from .test_webhook import spec_verify


def window(client: TestClient, db: Database, settings: Settings, i: int, shift: float) -> None:
    """One window of 500 predictions with all their ground truth, then the evaluator."""
    records, truth = simulate(500, seed=200 + i, concept_shift=shift, prefix=f"w{i}")
    post(client, records)
    feedback(client, records, truth)
    run_due(db, settings)


def test_degraded_windows_alert_every_channel_and_recover_in_the_same_thread(
    client: TestClient,
    db: Database,
    settings: Settings,
    http_receiver: Receiver,
    smtp_server: SmtpServer,
) -> None:
    setup_model(
        client,
        window={"kind": "count", "size": 500, "step": 500},
        performance={"metric": "accuracy", "min": 0.7},
        options={"incident_open_after": 2, "incident_of_last": 3, "incident_close_after": 2},
    )
    three_channels(client, http_receiver)
    window(client, db, settings, 0, 0.0)
    window(client, db, settings, 1, 3.0)  # the world moved: the model is wrong more often
    assert client.get("/v1/models/churn/performance/incidents").json()["items"] == []
    window(client, db, settings, 2, 3.0)  # two of the last three degraded: an incident

    [incident] = client.get("/v1/models/churn/performance/incidents").json()["items"]
    assert incident["status"] == "open" and incident["metric"] == "accuracy"
    assert incident["source"] == "realized" and incident["bound"] == 0.7
    assert incident["value"] < 0.7
    newest = client.get("/v1/models/churn/performance").json()["items"][0]
    assert newest["degraded"] is True and newest["incident_id"] == incident["id"]
    r = client.get("/v1/alerts")
    [alert] = r.json()["items"]
    assert alert["rule"] == "performance" and alert["status"] == "firing"
    assert sorted(d["channel"] for d in alert["deliveries"]) == ["hook", "mail", "slack"]
    drain(db, settings)

    [hook] = by_path(http_receiver, "/hook")
    assert spec_verify(WEBHOOK_SECRET, hook.headers, hook.body)
    payload = json.loads(hook.body)
    assert payload["type"] == "performance.degraded"
    data = payload["data"]
    assert data["model"] == "churn" and "accuracy degraded" in data["title"]
    fields = {f["name"]: f["value"] for f in data["fields"]}
    assert fields["bound"] == "0.7" and fields["judged by"] == "realized"
    assert "95% interval" in fields["accuracy"]
    assert any(u.endswith("/ui/models/churn") for u in data["links"].values())
    [slack] = by_path(http_receiver, "/slack")
    assert "accuracy degraded" in json.loads(slack.body)["text"]
    [mail] = smtp_server.mails
    assert "accuracy degraded" in mail.message["Subject"]
    first_id = mail.message["Message-ID"]

    window(client, db, settings, 3, 0.0)
    window(client, db, settings, 4, 0.0)  # two clean windows in a row: recovered
    [incident] = client.get("/v1/models/churn/performance/incidents").json()["items"]
    assert incident["status"] == "closed" and incident["closed_at"] is not None
    [alert] = client.get("/v1/alerts").json()["items"]
    assert alert["status"] == "resolved"
    drain(db, settings, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2))
    assert {d["status"] for d in alert_deliveries(client)} == {"delivered"}
    recovered = json.loads(by_path(http_receiver, "/hook")[1].body)
    assert recovered["type"] == "performance.recovered"
    assert recovered["data"]["dedup_key"] == data["dedup_key"]
    assert smtp_server.mails[1].message["In-Reply-To"] == first_id


def test_without_settings_nothing_is_judged(
    client: TestClient, db: Database, settings: Settings
) -> None:
    setup_model(client, performance=None)
    records, truth = simulate(2000, seed=9, concept_shift=3.0)
    post(client, records)
    feedback(client, records, truth)
    assert run_due(db, settings) == 0
    items: list[dict[str, Any]] = client.get("/v1/models/churn/performance").json()["items"]
    assert items and all(w["degraded"] is False and w["judged_by"] is None for w in items)
