"""The alerting API: channels, the test send, silences, scopes, and secrets that never come out."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.alerting import outbox
from app.alerting.signing import generate_secret
from app.db import Database
from app.settings import Settings
from tests.factories import make_key

from .conftest import (
    WEBHOOK_SECRET,
    Receiver,
    Reply,
    SmtpServer,
    add_channel,
    add_webhook,
    alerts,
    drain,
)
from .test_webhook import spec_verify

SLACK_TOKEN_PATH = "/services/T0SECRET/B0SECRET/xoxbSECRETtoken"


def fire(db: Database, *, model: str = "churn", rule: str = "queue.backlog") -> None:
    with db.session() as session:
        outbox.fire(
            session,
            outbox.AlertSpec(
                rule=rule,
                subject=model,
                episode="1",
                severity="warning",
                title=f"{rule} on {model}",
                summary="-",
                model_name=model,
            ),
            now=dt.datetime.now(dt.UTC),
        )


def test_create_list_update_delete_a_channel(client: TestClient, http_receiver: Receiver) -> None:
    body = add_webhook(client, http_receiver, models=["churn"], min_severity="warning")
    assert body["kind"] == "webhook" and body["models"] == ["churn"]
    assert body["target"] == f"http://127.0.0.1:{http_receiver.port}/…"  # redacted
    assert body["signing_secrets"] == 1 and body["enabled"] is True
    assert (
        client.post(
            "/v1/alert-channels",
            json={"name": "hook", "kind": "email", "target": "a@example.com"},
        ).status_code
        == 409
    )

    listed = client.get("/v1/alert-channels", params={"limit": 1}).json()
    assert [c["name"] for c in listed["items"]] == ["hook"] and listed["next_cursor"] is None
    rotated = client.patch(
        "/v1/alert-channels/hook", json={"secrets": [generate_secret(), WEBHOOK_SECRET]}
    )
    assert rotated.status_code == 200 and rotated.json()["signing_secrets"] == 2
    assert client.patch("/v1/alert-channels/hook", json={"models": None}).json()["models"] is None
    assert client.delete("/v1/alert-channels/hook").status_code == 204
    assert client.delete("/v1/alert-channels/hook").status_code == 404
    assert client.post("/v1/alert-channels/hook/test").status_code == 404


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"kind": "webhook", "target": "http://127.0.0.1:9/x"}, "secret"),
        (
            {"kind": "webhook", "target": "http://127.0.0.1:9/x", "secret": "hunter2-SECRET"},
            "secret",
        ),
        ({"kind": "slack", "target": "http://169.254.169.254/latest/"}, "target"),
        ({"kind": "slack", "target": "ftp://example.com/x"}, "target"),
        ({"kind": "email", "target": "not an address"}, "target"),
        ({"kind": "email", "target": "a@example.com", "secret": WEBHOOK_SECRET}, "secret"),
        ({"kind": "pager", "target": "x"}, "kind"),
    ],
)
def test_invalid_channels_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], loc: str
) -> None:
    r = client.post("/v1/alert-channels", json={"name": "bad", **body})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["details"][0]["loc"][-1] == loc
    assert "hunter2" not in json.dumps(error)  # a rejected secret is not echoed back


def test_private_targets_need_the_setting(db_url: str) -> None:
    from app.main import create_app
    from tests.conftest import ADMIN_SECRET, make_settings

    app = create_app(make_settings(db_url))  # allow_private_targets defaults to false
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_SECRET}"}) as c:
        r = c.post(
            "/v1/alert-channels",
            json={"name": "s", "kind": "slack", "target": "http://127.0.0.1:9/hook"},
        )
    assert r.status_code == 422
    assert "loopback" in r.json()["error"]["message"]


def test_scopes(client: TestClient, http_receiver: Receiver) -> None:
    add_webhook(client, http_receiver)
    review = make_key(client, "review", name="rev")
    ingest = make_key(client, "ingest", name="ing")
    assert client.get("/v1/alert-channels", headers=review).status_code == 200
    assert client.get("/v1/alerts", headers=review).status_code == 200
    assert client.get("/v1/alerts", headers=ingest).status_code == 403
    assert client.delete("/v1/alert-channels/hook", headers=review).status_code == 403
    assert client.post("/v1/alert-channels/hook/test", headers=review).status_code == 403
    assert client.get("/v1/alerts", params={"status": "open"}).status_code == 422
    assert client.get("/v1/alerts", params={"cursor": "garbage"}).status_code == 422


def test_the_test_send_returns_what_the_receiver_answered(
    client: TestClient, http_receiver: Receiver, smtp_server: SmtpServer
) -> None:
    add_webhook(client, http_receiver)
    r = client.post("/v1/alert-channels/hook/test")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["delivered"] is True and body["status_code"] == 200 and body["response"] == "ok"
    [request] = http_receiver.requests
    assert spec_verify(WEBHOOK_SECRET, request.headers, request.body)
    assert request.headers["webhook-id"] == body["webhook_id"]
    assert json.loads(request.body)["type"] == "channel.test"

    http_receiver.answer(Reply(410, b"gone for good"))
    body = client.post("/v1/alert-channels/hook/test").json()
    assert body["delivered"] is False and body["outcome"] == "disable_channel"
    assert body["status_code"] == 410 and body["response"] == "gone for good"
    channel = client.get("/v1/alert-channels").json()["items"][0]
    assert channel["enabled"] is True  # a test changes nothing

    add_channel(client, name="mail", kind="email", target="oncall@example.com")
    body = client.post("/v1/alert-channels/mail/test").json()
    assert body["delivered"] is True
    [mail] = smtp_server.mails
    assert "Test message for channel mail" in mail.message["Subject"]


def test_filters_and_silences_route_each_alert(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    add_webhook(client, http_receiver, name="churn-only", models=["churn"])
    add_webhook(client, http_receiver, name="critical-only", min_severity="critical")
    add_webhook(client, http_receiver, name="everything")
    until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    r = client.post(
        "/v1/alert-silences",
        json={"channel": "everything", "model": "fraud", "until": until.isoformat()},
    )
    assert r.status_code == 201, r.text
    silence = r.json()
    assert silence["active"] is True and silence["channel"] == "everything"

    fire(db, model="churn")
    fire(db, model="fraud")
    routed = {a["model"]: sorted(d["channel"] for d in a["deliveries"]) for a in alerts(client)}
    assert routed == {"churn": ["churn-only", "everything"], "fraud": []}

    # The silence ends (deleted here): the next reminder run writes the firing message.
    assert client.delete(f"/v1/alert-silences/{silence['id']}").status_code == 204
    assert client.get("/v1/alert-silences").json()["items"] == []
    with db.session() as session:
        outbox.remind(session, now=dt.datetime.now(dt.UTC), repeat_interval=dt.timedelta(hours=4))
    [fraud] = alerts(client, model="fraud")
    assert [(d["channel"], d["notification"]) for d in fraud["deliveries"]] == [
        ("everything", "firing")
    ]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    r = client.post("/v1/alert-silences", json={"rule": "x", "until": past.isoformat()})
    assert r.status_code == 422
    assert client.post("/v1/alert-silences", json={"until": until.isoformat()}).status_code == 422


def test_secrets_never_leave_through_the_api_or_the_logs(
    client: TestClient,
    db: Database,
    settings: Settings,
    http_receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    second = generate_secret()
    slack_url = f"http://127.0.0.1:{http_receiver.port}{SLACK_TOKEN_PATH}"
    responses = [
        client.post(
            "/v1/alert-channels",
            json={
                "name": "hook",
                "kind": "webhook",
                "target": f"http://127.0.0.1:{http_receiver.port}/hook",
                "secrets": [WEBHOOK_SECRET, second],
            },
        ),
        client.post(
            "/v1/alert-channels",
            json={"name": "slack", "kind": "slack", "target": slack_url, "min_interval_seconds": 0},
        ),
    ]
    http_receiver.answer(Reply(500, b"boom"), Reply(503, b"down"))
    responses.append(client.post("/v1/alert-channels/slack/test"))
    fire(db)
    drain(db, settings)
    drain(db, settings, now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    responses += [
        client.get("/v1/alert-channels"),
        client.get("/v1/alerts"),
        client.patch("/v1/alert-channels/slack", json={"target": slack_url + "2"}),
        client.get("/openapi.json"),
    ]
    assert all(r.status_code < 300 for r in responses), [r.text for r in responses]
    assert any(r.path == SLACK_TOKEN_PATH for r in http_receiver.requests)  # it was used
    logged = "\n".join(f"{rec.getMessage()} {rec.__dict__}" for rec in caplog.records) + "".join(
        str(rec.exc_info) for rec in caplog.records
    )
    assert "alert delivery" in logged  # the sends were logged
    for secret in (WEBHOOK_SECRET, second, "c2VjcmV0LXNpZ25pbmcta2V5", "T0SECRET", "xoxbSECRET"):
        for r in responses:
            assert secret not in r.text
        assert secret not in logged
