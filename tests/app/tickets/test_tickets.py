"""/v1/tickets over HTTP: every status code of API.md's Tickets section."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import Database
from app.ingest import endpoints as ingest_endpoints
from storage.base import utcnow
from tests.exceptions_queue.helpers import open_incident, prediction_ids, seed
from tests.factories import make_key


@pytest.fixture
def ana(client: TestClient) -> dict[str, str]:
    return make_key(client, "review", name="ana")


@pytest.fixture
def bob(client: TestClient) -> dict[str, str]:
    return make_key(client, "review", name="bob")


def claim(client: TestClient, who: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/v1/tickets/claim", headers=who, json=body or None)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"code", "message", "details"}
    return err


def test_auth_401_and_403(client: TestClient) -> None:
    seed(client, 1)
    ingest = make_key(client, "ingest", name="model")
    for method, path in [
        ("GET", "/v1/tickets"),
        ("GET", "/v1/tickets/summary"),
        ("GET", "/v1/tickets/1"),
        ("POST", "/v1/tickets/claim"),
        ("POST", "/v1/tickets/1/resolve"),
        ("POST", "/v1/tickets/1/dismiss"),
        ("POST", "/v1/tickets/1/release"),
        ("POST", "/v1/tickets/1/heartbeat"),
        ("POST", "/v1/tickets/1/reopen"),
    ]:
        r = client.request(method, path, headers={"Authorization": "Bearer nope"})
        assert error(r, 401)["code"] == "unauthorized"
        r = client.request(method, path, headers=ingest)
        assert error(r, 403)["code"] == "forbidden"


def test_the_key_is_checked_before_the_body(client: TestClient, ana: dict[str, str]) -> None:
    # the hot routes check the key with their work; a bad body must not reveal the route
    seed(client, 1)
    ingest = make_key(client, "ingest", name="model")
    bad = {"label": {"not": "a label"}, "unknown": 1}
    for path in ("/v1/tickets/1/resolve", "/v1/tickets/0/dismiss", "/v1/tickets/x/release"):
        r = client.post(path, json=bad, headers={"Authorization": "Bearer nope"})
        assert error(r, 401)["code"] == "unauthorized", path
        assert r.headers["www-authenticate"] == "Bearer"
        assert error(client.post(path, json=bad, headers=ingest), 403)["code"] == "forbidden"
        # with a reviewer's key, the body's fault is named
        assert error(client.post(path, json=bad, headers=ana), 422)["code"] == "validation_error"


def test_claim_resolve_and_read_back(client: TestClient, ana: dict[str, str]) -> None:
    seed(client, 2)
    t = claim(client, ana, lease_seconds=60)
    assert (t["status"], t["kind"], t["claimed_by"].split(" ")[0]) == (
        "claimed",
        "low_confidence",
        "ana",
    )
    assert t["predictions"][0]["id"] == t["prediction_id"] == "req-1-0"
    assert len(t["lease_token"]) == 32 and t["due_at"] > t["created_at"]
    r = client.post(
        f"/v1/tickets/{t['id']}/resolve",
        headers=ana,
        json={"label": "churn", "note": "asked to cancel", "lease_token": t["lease_token"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    assert r.json()["resolution"] == {"note": "asked to cancel", "label": "churn"}
    detail = client.get(f"/v1/tickets/{t['id']}", headers=ana).json()
    assert [e["action"] for e in detail["events"]] == ["open", "claim", "resolve"]
    assert detail["events"][1]["actor"].startswith("ana (")
    assert [(lab["label"], lab["status"]) for lab in detail["labels"]] == [("churn", "current")]


def test_resolve_without_a_token_is_accepted_from_the_holder(
    client: TestClient, ana: dict[str, str], bob: dict[str, str]
) -> None:
    seed(client, 1)
    t = claim(client, ana)
    err = error(
        client.post(f"/v1/tickets/{t['id']}/resolve", headers=bob, json={"label": "stay"}), 409
    )
    assert err["details"] == [{"reason": "not_holder", "status": "claimed"}]
    r = client.post(f"/v1/tickets/{t['id']}/resolve", headers=ana, json={"label": "stay"})
    assert r.status_code == 200


def test_empty_queue_is_204(client: TestClient, ana: dict[str, str]) -> None:
    seed(client, 0)
    r = client.post("/v1/tickets/claim", headers=ana)
    assert r.status_code == 204 and r.content == b""
    seed(client, 1, name="other")
    assert client.post("/v1/tickets/claim", headers=ana, json={"model": "churn"}).status_code == 204
    assert client.post("/v1/tickets/claim", headers=ana, json={"kind": "drift"}).status_code == 204


def test_409_for_a_finished_ticket_and_a_stale_token(
    client: TestClient, ana: dict[str, str]
) -> None:
    seed(client, 1)
    t = claim(client, ana)
    path = f"/v1/tickets/{t['id']}"
    r = client.post(f"{path}/resolve", headers=ana, json={"label": "stay", "lease_token": "x" * 32})
    assert error(r, 409)["details"][0]["reason"] == "stale_token"
    assert client.post(f"{path}/dismiss", headers=ana, json={"reason": "spam"}).status_code == 200
    for action, body in [
        ("resolve", {"label": "stay"}),
        ("dismiss", {"reason": "again"}),
        ("release", None),
        ("heartbeat", None),
    ]:
        err = error(client.post(f"{path}/{action}", headers=ana, json=body), 409)
        assert err["details"][0]["reason"] == "finished"
        assert "dismissed" in err["message"]


def test_404s(client: TestClient, ana: dict[str, str]) -> None:
    seed(client, 1)
    assert error(client.get("/v1/tickets/999999", headers=ana), 404)["code"] == "not_found"
    for action, body in [
        ("resolve", {"label": "stay"}),
        ("dismiss", {"reason": "x"}),
        ("release", None),
        ("heartbeat", None),
        ("reopen", None),
    ]:
        error(client.post(f"/v1/tickets/999999/{action}", headers=ana, json=body), 404)
    error(client.post("/v1/tickets/claim", headers=ana, json={"model": "nope"}), 404)
    error(client.get("/v1/tickets", headers=ana, params={"model": "nope"}), 404)
    error(client.get("/v1/tickets/summary", headers=ana, params={"model": "nope"}), 404)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"label": "maybe"}, ["label"]),
        ({"label": "stay", "labels": []}, []),
        ({"note": "no label"}, ["label"]),
        ({"label": "stay", "surprise": 1}, ["surprise"]),
        ({"label": ["stay"]}, ["label"]),
    ],
)
def test_resolve_422(
    client: TestClient, ana: dict[str, str], body: dict[str, Any], loc: list[Any]
) -> None:
    seed(client, 1)
    t = claim(client, ana)
    err = error(client.post(f"/v1/tickets/{t['id']}/resolve", headers=ana, json=body), 422)
    assert err["code"] == "validation_error"
    assert err["details"][0]["loc"][: len(loc)] == loc
    assert client.get(f"/v1/tickets/{t['id']}", headers=ana).json()["status"] == "claimed"


def test_other_422s(client: TestClient, ana: dict[str, str]) -> None:
    seed(client, 1)
    error(client.post("/v1/tickets/claim", headers=ana, json={"kind": "nonsense"}), 422)
    error(client.post("/v1/tickets/claim", headers=ana, json={"lease_seconds": 1}), 422)
    error(client.get("/v1/tickets", headers=ana, params={"status": "lost"}), 422)
    error(client.get("/v1/tickets", headers=ana, params={"cursor": "garbage"}), 422)
    error(client.get("/v1/tickets/abc", headers=ana), 422)
    t = claim(client, ana)
    error(client.post(f"/v1/tickets/{t['id']}/dismiss", headers=ana, json={}), 422)
    error(client.post(f"/v1/tickets/{t['id']}/dismiss", headers=ana, json={"reason": ""}), 422)


def test_release_heartbeat_and_reopen(
    client: TestClient, ana: dict[str, str], bob: dict[str, str]
) -> None:
    seed(client, 1)
    t = claim(client, ana, lease_seconds=30)
    path = f"/v1/tickets/{t['id']}"
    beat = client.post(f"{path}/heartbeat", headers=ana, json={"lease_seconds": 600})
    assert beat.status_code == 200 and beat.json()["lease_expires_at"] > t["lease_expires_at"]
    error(client.post(f"{path}/heartbeat", headers=bob), 409)
    released = client.post(f"{path}/release", headers=ana, json={"lease_token": t["lease_token"]})
    assert released.status_code == 200
    assert (released.json()["status"], released.json()["abandon_count"]) == ("open", 1)
    t = claim(client, bob)
    client.post(f"{path}/resolve", headers=bob, json={"label": "stay"})
    error(client.post(f"{path}/reopen", headers=ana), 409)
    again = client.post(f"{path}/reopen", headers=bob)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "claimed" and again.json()["lease_token"]
    detail = client.get(path, headers=bob).json()
    assert [e["action"] for e in detail["events"]] == [
        "open",
        "claim",
        "heartbeat",
        "release",
        "claim",
        "resolve",
        "reopen",
    ]
    assert [lab["status"] for lab in detail["labels"]] == ["retracted"]
    error(client.post(f"{path}/reopen", headers=bob), 409)  # not finished


def test_list_filters_and_pages(
    client: TestClient, db: Database, ana: dict[str, str], bob: dict[str, str]
) -> None:
    seed(client, 5)
    open_incident(db, sample=tuple(prediction_ids(db)[:2]))
    held = claim(client, ana)
    assert held["kind"] == "drift"
    page = client.get("/v1/tickets", headers=ana, params={"limit": 2}).json()
    seen = [t["id"] for t in page["items"]]
    while page["next_cursor"]:
        page = client.get(
            "/v1/tickets", headers=ana, params={"limit": 2, "cursor": page["next_cursor"]}
        ).json()
        seen += [t["id"] for t in page["items"]]
    assert len(seen) == len(set(seen)) == 6

    def ids(**params: Any) -> list[int]:
        r = client.get("/v1/tickets", headers=ana, params=params)
        assert r.status_code == 200, r.text
        return [t["id"] for t in r.json()["items"]]

    assert ids(status="claimed") == [held["id"]]
    assert ids(assignee="me") == [held["id"]]
    assert client.get("/v1/tickets", headers=bob, params={"assignee": "me"}).json()["items"] == []
    assert len(ids(kind="low_confidence", status="open", model="churn")) == 5
    assert ids(min_age_seconds=3600) == []
    assert len(ids(max_age_seconds=3600)) == 6
    assert ids(overdue=True) == []
    item = client.get(f"/v1/tickets/{held['id']}", headers=ana).json()
    assert item["details"]["drifted_features"] == ["age"]
    assert [p["id"] for p in item["predictions"]] == ["req-1-0", "req-1-1"]
    assert item["age_seconds"] >= 0 and item["overdue"] is False


def test_drift_ticket_takes_several_labels(
    client: TestClient, db: Database, ana: dict[str, str]
) -> None:
    seed(client, 3, confidence=0.9)
    open_incident(db, sample=tuple(prediction_ids(db)))
    t = claim(client, ana)
    body = {
        "labels": [
            {"prediction_id": "req-1-0", "label": "churn"},
            {"prediction_id": "nope", "label": "churn"},
        ]
    }
    err = error(client.post(f"/v1/tickets/{t['id']}/resolve", headers=ana, json=body), 422)
    assert err["details"][0]["loc"] == ["labels", 1, "prediction_id"]
    body["labels"] = body["labels"][:1]
    r = client.post(f"/v1/tickets/{t['id']}/resolve", headers=ana, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["resolution"]["labels"] == [{"prediction_id": "req-1-0", "label": "churn"}]


def test_summary_and_metrics(
    client: TestClient, ana: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # late in the hour the batch is expected to be its last: it gets nearly all the budget
    late = (utcnow() - dt.timedelta(hours=1)).replace(minute=59, second=0, microsecond=0)
    monkeypatch.setattr(ingest_endpoints, "utcnow", lambda: late)
    seed(client, 12, ticket_budget_per_hour=6)
    opened = len(client.get("/v1/tickets", headers=ana, params={"limit": 100}).json()["items"])
    assert 0 < opened < 12  # drawn by value, about 6 in expectation
    t = claim(client, ana)
    client.post(f"/v1/tickets/{t['id']}/resolve", headers=ana, json={"label": "stay"})
    s = client.get("/v1/tickets/summary", headers=ana).json()
    assert (s["open"], s["claimed"], s["suppressed_total"]) == (opened - 1, 0, 12 - opened)
    assert s["queues"][0]["kind"] == "low_confidence" and s["oldest_open_age_seconds"] >= 0
    assert [(r["reviewer"].split(" ")[0], r["resolved"]) for r in s["finished_last_hour"]] == [
        ("ana", 1)
    ]
    text = client.get("/metrics").text
    assert (
        f'driftdesk_tickets{{model="churn",kind="low_confidence",status="open"}} {opened - 1}'
        in text
    )
    assert (
        f'driftdesk_tickets_suppressed{{model="churn",kind="low_confidence"}} {12 - opened}' in text
    )
    assert "driftdesk_tickets_oldest_open_age_seconds{" in text
    assert "driftdesk_tickets_finished_last_hour{" in text


def test_second_reviews_go_to_someone_else(
    client: TestClient, ana: dict[str, str], bob: dict[str, str]
) -> None:
    seed(client, 1, review_rate=1.0)
    t = claim(client, ana)
    client.post(f"/v1/tickets/{t['id']}/resolve", headers=ana, json={"label": "churn"})
    assert client.post("/v1/tickets/claim", headers=ana).status_code == 204
    review = claim(client, bob)
    assert review["kind"] == "second_review" and review["subject_ticket_id"] == t["id"]
    # blind: the first label is not shown
    assert "churn" not in str(review["details"]) and review["resolution"] is None
    r = client.post(f"/v1/tickets/{review['id']}/resolve", headers=bob, json={"label": "stay"})
    assert r.json()["qc_agreed"] is False
    adj = claim(client, ana)
    assert adj["kind"] == "adjudication"
    s = client.get("/v1/tickets/summary", headers=ana).json()
    assert s["agreement_by_model"] == [{"name": "churn", "reviews": 1, "agreed": 0, "rate": 0.0}]


def test_openapi_documents_the_queue(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    claim_op = spec["paths"]["/v1/tickets/claim"]["post"]
    assert {"200", "204"} <= set(claim_op["responses"])
    assert "/v1/models/{name}/training-data" in spec["paths"]
    resolve = spec["components"]["schemas"]["ResolveIn"]
    assert resolve.get("examples")


def test_a_resolve_that_makes_retraining_data_ready_puts_the_notice_in_the_outbox(
    client: TestClient, ana: dict[str, str]
) -> None:
    """app.tickets.flows.resolve: the queue says "ready", alerting records the notice."""
    seed(client, 2, retraining_ready_labels=2)

    def notices() -> list[dict[str, Any]]:
        r = client.get("/v1/alerts", params={"limit": 100})
        assert r.status_code == 200, r.text
        return [a for a in r.json()["items"] if a["rule"] == "training_data.ready"]

    for n in range(2):
        t = claim(client, ana)
        r = client.post(
            f"/v1/tickets/{t['id']}/resolve",
            headers=ana,
            json={"label": "churn", "lease_token": t["lease_token"]},
        )
        assert r.status_code == 200, r.text
        assert len(notices()) == n  # the second label reaches the threshold of 2
    [notice] = notices()
    assert notice["model"] == "churn" and notice["notice"] is True
    assert notice["links"]["export"].endswith("/v1/models/churn/training-data")
