"""Alerts from the queue (SLA, backlog, data-quality surge) and the retraining-data notice."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.alerting import rules
from app.alerting.rules import run_alert_rules
from app.db import Database
from app.settings import Settings
from exceptions_queue.service import RetrainingReady
from storage.base import utcnow
from storage.tables import MonitoredModel
from tests.factories import create_model_with_reference, predictions

from .conftest import Receiver, add_webhook, alerts, drain


def states(client: TestClient) -> dict[str, str]:
    return {a["rule"]: a["status"] for a in reversed(alerts(client))}  # the latest per rule


def test_sla_backlog_and_data_quality_surge_fire_once_and_resolve(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    settings = settings.model_copy(
        update={"alert_queue_backlog": 5, "alert_data_quality_surge": 10}
    )
    features: list[dict[str, Any]] = [
        {"name": "age", "type": "numerical", "required": True},
        {"name": "income", "type": "numerical"},
        {"name": "plan", "type": "categorical"},
    ]
    create_model_with_reference(client, features=features)
    add_webhook(client, http_receiver)
    unsure = predictions(10, seed=3, prefix="unsure", confidence=0.3)
    broken = predictions(20, seed=4, prefix="broken")
    for record in broken:
        del record["features"]["age"]
    r = client.post("/v1/models/churn/predictions", json={"predictions": unsure + broken})
    assert r.status_code == 202, r.text

    now = utcnow()
    assert run_alert_rules(db, settings, now=now) == 2
    assert states(client) == {"queue.backlog": "firing", "data_quality.surge": "firing"}
    assert run_alert_rules(db, settings, now=now) == 0  # still firing: nothing new
    [surge] = alerts(client, rule="data_quality.surge")
    assert ("records in an hour", "20") in [(f["name"], f["value"]) for f in surge["fields"]]
    # the links a person follows lead to the reviewers' queue, filtered, and the dashboard
    assert surge["links"]["tickets"].endswith("/ui/queue?model=churn&kind=data_quality")
    [backlog] = alerts(client, rule="queue.backlog")
    assert backlog["links"]["tickets"].endswith("/ui/queue?model=churn&status=open")
    assert backlog["links"]["dashboard"].endswith("/ui/models/churn")

    later = now + dt.timedelta(days=30)  # every waiting ticket is past its SLA; the hour is over
    run_alert_rules(db, settings, now=later)
    assert states(client) == {
        "queue.backlog": "firing",
        "data_quality.surge": "resolved",
        "queue.sla": "firing",
    }
    relaxed = settings.model_copy(
        update={"alert_queue_backlog": 1000, "alert_data_quality_surge": 1000}
    )
    run_alert_rules(db, relaxed, now=now)
    assert set(states(client).values()) == {"resolved"}

    drain(db, settings, now=later)
    types = [json.loads(r.body)["type"] for r in http_receiver.requests]
    assert sorted(types) == sorted(
        [
            "queue.backlog.exceeded",
            "queue.backlog.recovered",
            "data_quality.surge.started",
            "data_quality.surge.ended",
            "queue.sla.breached",
            "queue.sla.recovered",
        ]
    )

    run_alert_rules(db, settings, now=now)  # the backlog is back: a new episode, a new key
    backlogs = alerts(client, rule="queue.backlog")
    assert [a["status"] for a in backlogs] == ["firing", "resolved"]
    assert backlogs[0]["dedup_key"] != backlogs[1]["dedup_key"]

    assert client.delete("/v1/models/churn").status_code in (200, 204)  # archived
    run_alert_rules(db, settings, now=now)
    assert alerts(client, status="firing") == []  # nothing fires on for ever


def test_retraining_data_ready_is_an_info_notice(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    create_model_with_reference(client)
    add_webhook(client, http_receiver, name="all")
    add_webhook(client, http_receiver, name="loud", min_severity="warning")
    with db.session() as session:
        model_id = session.scalar(select(MonitoredModel.id))
        assert model_id is not None
        rules.training_ready(
            session,
            RetrainingReady(
                model_id=model_id,
                model_name="churn",
                at=utcnow(),
                new_labels=250,
                total_labels=1200,
                since=None,
                export_path="/v1/models/churn/training-data",
            ),
            settings=settings,
        )
    [notice] = alerts(client)
    assert notice["rule"] == "training_data.ready" and notice["severity"] == "info"
    assert notice["status"] == "resolved" and notice["notice"] is True  # nothing to resolve later
    assert [d["channel"] for d in notice["deliveries"]] == ["all"]
    assert notice["links"]["export"].endswith("/v1/models/churn/training-data")
    drain(db, settings)
    [request] = http_receiver.requests
    assert json.loads(request.body)["type"] == "training_data.ready"
    run_alert_rules(db, settings, now=utcnow() + dt.timedelta(days=1))
    assert len(alerts(client)[0]["deliveries"]) == 1  # a notice is never reminded
