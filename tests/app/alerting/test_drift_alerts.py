"""From a drift incident to a signed webhook, a Slack message and an email, and the noise test."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

from fastapi.testclient import TestClient

from app.alerting.rules import run_alert_rules
from app.db import Database
from app.drift.service import run_due_evaluations
from app.settings import Settings
from tests.factories import create_model_with_reference, predictions

from .conftest import (
    WEBHOOK_SECRET,
    Receiver,
    SmtpServer,
    add_channel,
    add_webhook,
    alerts,
    drain,
)
from .test_webhook import spec_verify


def post(client: TestClient, records: list[dict[str, Any]]) -> None:
    for i in range(0, len(records), 500):
        r = client.post("/v1/models/churn/predictions", json={"predictions": records[i : i + 500]})
        assert r.status_code == 202, r.text


def three_channels(client: TestClient, receiver: Receiver, **extra: Any) -> None:
    add_webhook(client, receiver, name="hook", **extra)
    add_channel(
        client,
        name="slack",
        kind="slack",
        target=f"http://127.0.0.1:{receiver.port}/slack",
        **extra,
    )
    add_channel(client, name="mail", kind="email", target="oncall@example.com", **extra)


def by_path(receiver: Receiver, path: str) -> list[Any]:
    return [r for r in receiver.requests if r.path == path]


def test_incident_to_webhook_slack_and_email_then_resolved_in_the_same_thread(
    client: TestClient,
    db: Database,
    settings: Settings,
    http_receiver: Receiver,
    smtp_server: SmtpServer,
) -> None:
    create_model_with_reference(client)
    three_channels(client, http_receiver)
    post(client, predictions(1000, seed=11))
    run_due_evaluations(db, settings)
    post(client, predictions(1000, seed=12, prefix="shift", age_shift=15.0))
    run_due_evaluations(db, settings)

    [alert] = alerts(client)
    assert alert["rule"] == "drift.incident" and alert["status"] == "firing"
    assert alert["model"] == "churn" and "age" in alert["title"]
    assert sorted(d["channel"] for d in alert["deliveries"]) == ["hook", "mail", "slack"]
    assert {d["status"] for d in alert["deliveries"]} == {"pending"}  # committed with the incident
    drain(db, settings)

    [hook] = by_path(http_receiver, "/hook")
    assert spec_verify(WEBHOOK_SECRET, hook.headers, hook.body)
    payload = json.loads(hook.body)
    assert payload["type"] == "drift.incident.opened"
    assert payload["data"]["dedup_key"] == alert["dedup_key"]
    assert payload["data"]["severity"] == alert["severity"]
    [slack] = by_path(http_receiver, "/slack")
    message = json.loads(slack.body)
    assert message["text"].startswith(f"[{alert['severity'].upper()}] Drift on churn")
    assert message["blocks"][0]["type"] == "header"
    buttons = next(b for b in message["blocks"] if b["type"] == "actions")["elements"]
    urls = [b["url"] for b in buttons]
    # a person clicks these: the queue page (a browser sends no API key to /v1/...)
    assert any(u.endswith("/ui/queue?model=churn&kind=drift") for u in urls)
    assert "Open queue" in [b["text"]["text"] for b in buttons]
    assert any(u.endswith("/ui/models/churn") for u in urls)
    assert any("/report" in u for u in urls)
    [mail] = smtp_server.mails
    assert mail.rcpt_tos == ["oncall@example.com"]
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert "Drift on churn" in mail.message["Subject"]
    first_id = mail.message["Message-ID"]

    post(client, predictions(2500, seed=13, prefix="back"))
    run_due_evaluations(db, settings)
    [alert] = alerts(client)
    assert alert["status"] == "resolved"
    # Slack's rate limit (1 message/s) holds the resolve back that long
    drain(db, settings, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2))
    assert {d["status"] for d in alert_deliveries(client)} == {"delivered"}

    closed = json.loads(by_path(http_receiver, "/hook")[1].body)
    assert closed["type"] == "drift.incident.closed"
    assert closed["data"]["dedup_key"] == payload["data"]["dedup_key"]
    resolved_slack = json.loads(by_path(http_receiver, "/slack")[1].body)
    assert resolved_slack["text"].startswith("[RESOLVED]")
    resolved_mail = smtp_server.mails[1].message
    assert resolved_mail["In-Reply-To"] == first_id
    assert "RESOLVED" in resolved_mail["Subject"]


def alert_deliveries(client: TestClient) -> list[dict[str, Any]]:
    return [d for a in alerts(client) for d in a["deliveries"]]


def test_noise_one_firing_reminders_at_the_repeat_interval_one_resolved_per_channel(
    client: TestClient,
    db: Database,
    settings: Settings,
    http_receiver: Receiver,
    smtp_server: SmtpServer,
) -> None:
    repeat = dt.timedelta(hours=1)
    step = dt.timedelta(minutes=10)  # simulated time between evaluations
    settings = settings.model_copy(update={"alert_repeat_interval_seconds": 3600.0})
    create_model_with_reference(client, window={"kind": "count", "size": 400, "step": 200})
    three_channels(client, http_receiver, min_interval_seconds=0)
    # The drift ticket waits past its SLA in the simulated hours: mute that rule here.
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    r = client.post("/v1/alert-silences", json={"rule": "queue.sla", "until": until.isoformat()})
    assert r.status_code == 201, r.text
    post(client, predictions(400, seed=2))
    run_due_evaluations(db, settings)

    fired_at: dt.datetime | None = None
    ticks = 0
    for i in range(53):
        post(client, predictions(200, seed=100 + i, prefix=f"s{i}", age_shift=15.0))
        assert run_due_evaluations(db, settings) == 1
        if fired_at is None:
            firing = alerts(client, status="firing")
            if firing:
                fired_at = dt.datetime.fromisoformat(firing[0]["created_at"])
            continue
        ticks += 1
        now = fired_at + ticks * step
        run_alert_rules(db, settings, now=now)
        drain(db, settings, now=now)
    assert fired_at is not None
    incident = client.get("/v1/models/churn/drift/incidents").json()["items"][0]
    assert incident["status"] == "open" and incident["evaluations"] >= 50

    for i in range(5):  # clean windows close it
        post(client, predictions(200, seed=300 + i, prefix=f"c{i}"))
        run_due_evaluations(db, settings)
    drain(db, settings, now=fired_at + (ticks + 1) * step)
    [sla] = alerts(client, rule="queue.sla")
    assert sla["deliveries"] == []  # silenced on every channel
    [alert] = alerts(client, rule="drift.incident")
    assert alert["status"] == "resolved"

    reminders = ticks * step // repeat  # one per full repeat interval since the firing message
    assert reminders >= 7
    expected = ["firing"] + ["reminder"] * reminders + ["resolved"]
    for channel in ("hook", "slack", "mail"):
        sent = [d for d in alert["deliveries"] if d["channel"] == channel]
        assert [d["notification"] for d in sent] == expected, channel
        assert [d["repeat"] for d in sent] == [0, *range(1, reminders + 1), 0]
        assert {d["status"] for d in sent} == {"delivered"}
        gaps = [
            dt.datetime.fromisoformat(b["created_at"]) - dt.datetime.fromisoformat(a["created_at"])
            for a, b in itertools.pairwise(sent[:-1])
        ]
        assert all(g == repeat for g in gaps)  # never sooner, never skipped

    hooks = [json.loads(r.body) for r in by_path(http_receiver, "/hook")]
    assert len(hooks) == reminders + 2
    assert {h["data"]["dedup_key"] for h in hooks} == {alert["dedup_key"]}
    assert [h["type"] for h in hooks] == ["drift.incident.opened"] * (reminders + 1) + [
        "drift.incident.closed"
    ]
    assert len({r.headers["webhook-id"] for r in by_path(http_receiver, "/hook")}) == len(hooks)
    assert len(by_path(http_receiver, "/slack")) == reminders + 2
    mails = smtp_server.mails
    assert len(mails) == reminders + 2
    thread = mails[0].message["Message-ID"]
    assert all(m.message["In-Reply-To"] == thread for m in mails[1:])
