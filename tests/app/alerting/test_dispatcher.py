"""The outbox dispatcher against real receivers: retries, Retry-After, 410, dead letters, replay,
rate limits, leases. The clock is pinned (``now=``) to step through backoff without sleeping."""

from __future__ import annotations

import datetime as dt
import json
import threading

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.alerting import dispatcher, outbox
from app.alerting.outcome import MAX_ATTEMPTS
from app.alerting.tables import AlertDelivery
from app.db import Database
from app.settings import Settings

from .conftest import Receiver, Reply, add_channel, add_webhook, alerts, drain

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def fire(db: Database, subject: str = "churn", *, now: dt.datetime = T0) -> int:
    with db.session() as session:
        alert = outbox.fire(
            session,
            outbox.AlertSpec(
                rule="queue.backlog",
                subject=subject,
                episode="1",
                severity="warning",
                title=f"Backlog on {subject}",
                summary="Too many tickets.",
                model_name=subject,
            ),
            now=now,
        )
        assert alert is not None
        return alert.id


def deliveries(db: Database) -> list[AlertDelivery]:
    with db.session(readonly=True) as session:
        return list(session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


def test_retries_honour_retry_after_then_deliver_with_one_webhook_id(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    add_webhook(client, http_receiver)
    fire(db)
    http_receiver.answer(Reply(503, b"busy"), Reply(429, b"slow down", {"Retry-After": "120"}))

    assert dispatcher.dispatch_due(db, settings, now=T0) == 1
    [d] = deliveries(db)
    assert d.status == "pending" and d.attempts == 1 and d.last_status_code == 503
    first_wait = (d.next_attempt_at - T0).total_seconds()
    assert 1.0 <= first_wait <= 10.0  # backoff with jitter after the first attempt
    assert dispatcher.dispatch_due(db, settings, now=T0) == 0  # not due yet

    t1 = T0 + dt.timedelta(seconds=11)
    assert dispatcher.dispatch_due(db, settings, now=t1) == 1
    [d] = deliveries(db)
    assert d.last_status_code == 429
    assert (d.next_attempt_at - t1).total_seconds() >= 120  # the receiver's wish wins
    assert dispatcher.dispatch_due(db, settings, now=t1 + dt.timedelta(seconds=119)) == 0
    assert dispatcher.dispatch_due(db, settings, now=t1 + dt.timedelta(seconds=121)) == 1

    [d] = deliveries(db)
    assert d.status == "delivered" and d.attempts == 3
    ids = {r.headers["webhook-id"] for r in http_receiver.requests}
    assert ids == {d.webhook_id}
    assert len({r.body for r in http_receiver.requests}) == 1  # byte-identical re-sends
    [alert] = alerts(client)
    history = alert["deliveries"][0]["history"]
    assert [(h["number"], h["outcome"], h["status_code"]) for h in history] == [
        (1, "retry", 503),
        (2, "retry", 429),
        (3, "delivered", 200),
    ]
    assert history[1]["retry_after"] == 120 and history[0]["response"] == "busy"


def test_a_4xx_is_dead_at_once_keeps_its_error_and_is_replayed(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    add_webhook(client, http_receiver)
    fire(db)
    http_receiver.answer(Reply(400, b"invalid_payload"))
    drain(db, settings, now=T0)
    [d] = deliveries(db)
    assert d.status == "dead" and d.attempts == 1
    assert d.last_status_code == 400 and d.last_response == "invalid_payload"
    assert "400" in (d.last_error or "")
    [listed] = alerts(client, delivery_status="dead")
    assert listed["deliveries"][0]["status"] == "dead"

    r = client.post(f"/v1/alert-deliveries/{d.webhook_id}/replay")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["replays"] == 1
    drain(db, settings, now=T0 + dt.timedelta(minutes=1))
    [d] = deliveries(db)
    assert d.status == "delivered"
    assert [r.headers["webhook-id"] for r in http_receiver.requests] == [d.webhook_id] * 2
    again = client.post(f"/v1/alert-deliveries/{d.webhook_id}/replay")
    assert again.status_code == 409
    assert client.post("/v1/alert-deliveries/msg_nope/replay").status_code == 404


def test_dead_after_the_last_attempt(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    add_webhook(client, http_receiver)
    fire(db)
    http_receiver.answer(*[Reply(502, b"bad gateway")] * MAX_ATTEMPTS)
    now = T0
    for _ in range(MAX_ATTEMPTS):
        assert dispatcher.dispatch_due(db, settings, now=now) == 1
        now += dt.timedelta(hours=7)  # past any backoff (capped at 1 h) and Retry-After (6 h)
    [d] = deliveries(db)
    assert d.status == "dead" and d.attempts == MAX_ATTEMPTS
    assert d.last_error is not None and f"gave up after {MAX_ATTEMPTS} attempts" in d.last_error
    assert len(http_receiver.requests) == MAX_ATTEMPTS
    assert dispatcher.dispatch_due(db, settings, now=now + dt.timedelta(days=1)) == 0


def test_410_disables_the_channel_and_the_failure_is_reported_on_the_others(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    settings = settings.model_copy(update={"alert_dispatch_concurrency": 1})  # one at a time
    add_webhook(client, http_receiver, name="gone")
    add_webhook(client, http_receiver, name="backup")
    fire(db, "churn")
    fire(db, "fraud")
    # 1st to "gone": 410. Everything else: 200.
    http_receiver.answer(Reply(410, b"channel_is_archived"))
    drain(db, settings, now=T0)
    gone = [r for r in http_receiver.requests if r.path == "/gone"]
    assert len(gone) == 1  # the second alert's delivery died with the channel, unsent

    channel = next(
        c for c in client.get("/v1/alert-channels").json()["items"] if c["name"] == "gone"
    )
    assert channel["enabled"] is False and "410" in channel["disabled_reason"]
    by_channel: dict[str, list[str]] = {}
    for d in deliveries(db):
        by_channel.setdefault(d.channel_name, []).append(d.status)
    assert by_channel["gone"] == ["dead", "dead"]

    [failure] = alerts(client, rule="channel.delivery_failed")
    assert failure["status"] == "firing" and failure["severity"] == "critical"
    assert [d["channel"] for d in failure["deliveries"]] == ["backup"]  # never the broken one
    reported = [json.loads(r.body) for r in http_receiver.requests if r.path == "/backup"]
    assert [p["type"] for p in reported].count("channel.delivery_failed") == 1

    # Replay is refused while disabled; enable, replay, and the failure resolves.
    dead_id = failure["fields"][1]["value"]
    assert client.post(f"/v1/alert-deliveries/{dead_id}/replay").status_code == 409
    assert client.patch("/v1/alert-channels/gone", json={"enabled": True}).status_code == 200
    assert client.post("/v1/alert-channels/gone/replay").json() == {"replayed": 2}
    drain(db, settings, now=T0 + dt.timedelta(minutes=5))
    assert len([r for r in http_receiver.requests if r.path == "/gone"]) == 3
    [failure] = alerts(client, rule="channel.delivery_failed")
    assert failure["status"] == "resolved"
    types = [json.loads(r.body)["type"] for r in http_receiver.requests if r.path == "/backup"]
    assert types.count("channel.delivery_recovered") == 1


def test_slack_rate_limit_spaces_messages_across_dispatch_runs(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    body = add_channel(
        client, name="slack", kind="slack", target=f"http://127.0.0.1:{http_receiver.port}/s"
    )
    assert body["min_interval_seconds"] == settings.alert_slack_min_interval_seconds == 1.0
    fire(db, "a")
    fire(db, "b")
    assert dispatcher.dispatch_due(db, settings, now=T0) == 1
    assert dispatcher.dispatch_due(db, settings, now=T0 + dt.timedelta(seconds=0.5)) == 0
    assert dispatcher.dispatch_due(db, settings, now=T0 + dt.timedelta(seconds=1)) == 1
    assert len(http_receiver.requests) == 2


def test_concurrent_claims_never_share_a_delivery(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    add_webhook(client, http_receiver)
    for i in range(12):
        fire(db, f"m{i}")
    taken: list[list[int]] = []
    lock = threading.Lock()

    def claim() -> None:
        with db.session() as session:
            got = dispatcher.claim(session, now=T0, lease=60, limit=3)
        with lock:
            taken.append([c.delivery_id for c in got])

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for batch in taken for i in batch]
    assert len(ids) == len(set(ids)) == 12


def test_a_lost_lease_is_not_marked_and_the_resend_keeps_the_id(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    add_webhook(client, http_receiver)
    fire(db)
    lease = dispatcher.lease_seconds(settings)
    with db.session() as session:
        [first] = dispatcher.claim(session, now=T0, lease=lease, limit=1)
    with dispatcher.http_client() as http:
        sent = dispatcher.send_claimed(first, settings=settings, client=http, smtp=None)
    # The first dispatcher stalls past its lease; another claims and sends again.
    later = T0 + dt.timedelta(seconds=lease + 1)
    with db.session() as session:
        [second] = dispatcher.claim(session, now=later, lease=lease, limit=1)
    assert second.webhook_id == first.webhook_id and second.attempt == 2
    with db.session() as session:
        assert dispatcher.mark(session, sent, now=later) == "lost"
    with dispatcher.http_client() as http:
        resent = dispatcher.send_claimed(second, settings=settings, client=http, smtp=None)
    with db.session() as session:
        assert dispatcher.mark(session, resent, now=later) == "delivered"
    assert [r.headers["webhook-id"] for r in http_receiver.requests] == [first.webhook_id] * 2


def test_a_resolve_waits_for_its_unsent_firing_message(
    client: TestClient, db: Database, settings: Settings, http_receiver: Receiver
) -> None:
    add_webhook(client, http_receiver)
    fire(db)
    http_receiver.answer(Reply(503))
    drain(db, settings, now=T0)  # the firing message now waits for its retry
    with db.session() as session:
        outbox.resolve(
            session, now=T0, group_key="queue.backlog:churn", title="Backlog over", summary="ok"
        )
    assert dispatcher.dispatch_due(db, settings, now=T0) == 0  # the resolve may not overtake
    drain(db, settings, now=T0 + dt.timedelta(minutes=1))
    types = [json.loads(r.body)["type"] for r in http_receiver.requests]
    assert types == ["queue.backlog.exceeded"] * 2 + ["queue.backlog.recovered"]
