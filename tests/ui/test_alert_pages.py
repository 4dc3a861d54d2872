"""Alert channels and the alert log in the UI, against a real loopback receiver."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.alerting.dispatcher import dispatch_due
from app.db import Database
from app.settings import Settings
from tests.app.alerting.conftest import Receiver, Reply
from tests.conftest import make_settings
from tests.factories import make_key
from tests.ui.seed import seed_traffic
from tests.ui.test_pages import secret_of, sign_in


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, allow_private_targets=True, alert_send_timeout_seconds=2.0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


def add_channel(client: TestClient, token: str, receiver: Receiver, name: str) -> str:
    r = client.post(
        "/ui/admin/alert-channels",
        data={
            "csrf": token,
            "name": name,
            "kind": "webhook",
            "target": f"http://127.0.0.1:{receiver.port}/{name}",
            "min_severity": "info",
            "generate": "on",
        },
    )
    assert r.status_code == 201, r.text[-2000:]
    m = re.search(r'id="secret-value" class="code" readonly value="(whsec_[^"]+)"', r.text)
    assert m, "the generated signing secret is shown"
    return m.group(1)


def test_add_a_channel_its_secret_shown_once_and_send_a_test(
    client: TestClient, receiver: Receiver
) -> None:
    token = sign_in(client)
    secret = add_channel(client, token, receiver, "hook")
    page = client.get("/ui/admin/alert-channels")
    assert "hook" in page.text and secret not in page.text
    r = client.post("/ui/admin/alert-channels/hook/test", data={"csrf": token})
    assert r.status_code == 200 and "Test message to hook" in r.text
    assert re.search(r'badge delivered">delivered', r.text)
    [request] = receiver.requests
    assert request.path == "/hook" and request.headers["webhook-signature"].startswith("v1,")
    # the API's target checks apply: a scheme it refuses is refused here, with its reason
    r = client.post(
        "/ui/admin/alert-channels",
        data={
            "csrf": token,
            "name": "bad",
            "kind": "webhook",
            "target": "ftp://x",
            "generate": "on",
        },
    )
    assert r.status_code == 422 and "was not added" in r.text
    assert client.get("/v1/alert-channels").json()["items"][0]["name"] == "hook"
    r = client.post(
        "/ui/admin/alert-channels/hook/enabled", data={"csrf": token, "enabled": "false"}
    )
    assert "Channel hook disabled" in r.text
    assert client.get("/v1/alert-channels").json()["items"][0]["enabled"] is False


def test_dead_deliveries_are_listed_and_replayed(
    client: TestClient, db: Database, settings: Settings, receiver: Receiver
) -> None:
    token = sign_in(client)
    add_channel(client, token, receiver, "hook")
    receiver.answer(Reply(status=400, body=b"bad payload"))  # a 4xx is not retried: dead
    seed_traffic(client, db, settings, tickets=0)  # opens a drift incident: an alert
    assert dispatch_due(db, settings) == 1
    [alert] = client.get("/v1/alerts", params={"rule": "drift.incident"}).json()["items"]
    [delivery] = alert["deliveries"]
    assert delivery["status"] == "dead"

    page = client.get("/ui/alerts?delivery=dead")
    assert page.status_code == 200
    assert alert["title"] in page.text and 'badge dead">dead' in page.text
    assert f"/ui/admin/alert-deliveries/{delivery['id']}/replay" in page.text
    r = client.post(f"/ui/admin/alert-deliveries/{delivery['id']}/replay", data={"csrf": token})
    assert r.status_code == 200 and "queued again" in r.text
    [again] = client.get(f"/v1/alerts/{alert['id']}").json()["deliveries"]
    assert again["status"] == "pending" and again["replays"] == 1
    assert dispatch_due(db, settings) >= 1  # the receiver now answers 200
    [done] = client.get(f"/v1/alerts/{alert['id']}").json()["deliveries"]
    assert done["status"] == "delivered"

    # a reviewer reads the log but gets no replay button (replay is admin)
    client.post("/ui/logout", data={"csrf": token})
    sign_in(client, secret_of(make_key(client, "review", name="rev")))
    page = client.get("/ui/alerts")
    assert alert["title"] in page.text and "/ui/admin/alert-deliveries/" not in page.text
    assert client.get("/ui/admin/alert-channels").status_code == 403
