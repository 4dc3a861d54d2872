"""The UI over HTTP (no browser): sessions, CSRF, scopes, and the admin forms."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.settings import Settings
from app.ui.session import COOKIE
from exceptions_queue.tables import Ticket
from storage.tables import ApiKey, MonitoredModel
from tests.conftest import ADMIN_SECRET
from tests.factories import create_model, create_model_with_reference, make_key
from tests.ui.seed import low_confidence, post, seed_traffic


def csrf(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m
    return m.group(1)


def sign_in(client: TestClient, secret: str = ADMIN_SECRET) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    token = csrf(client.get("/ui/login").text)
    r = client.post("/ui/login", data={"key": secret, "csrf": token, "next": "/ui/models"})
    assert r.status_code == 200 and r.url.path == "/ui/models", r.text[:500]
    return csrf(r.text)


def secret_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_the_session_cookie_is_signed_http_only_same_site_and_holds_no_secret(
    client: TestClient,
) -> None:
    token = csrf(client.get("/ui/login").text)
    r = client.post(
        "/ui/login",
        data={"key": ADMIN_SECRET, "csrf": token, "next": "/ui/models"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/ui/models"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    assert ADMIN_SECRET not in cookie
    # a tampered cookie is no session at all
    value = client.cookies.get(COOKIE)
    assert value
    client.cookies.set(COOKIE, value[:-3] + "AAA", path="/ui")
    r = client.get("/ui/models", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


def test_unknown_and_ingest_keys_cannot_sign_in(client: TestClient) -> None:
    ingest = secret_of(make_key(client, "ingest", name="model-key"))
    for secret, message in (("dd_nope", "unknown or revoked"), (ingest, "review or admin key")):
        token = csrf(client.get("/ui/login").text)
        r = client.post("/ui/login", data={"key": secret, "csrf": token})
        assert r.status_code == 401 and message in r.text
        assert client.get("/ui/models", follow_redirects=False).status_code == 303


def test_sign_in_goes_back_only_within_the_ui(client: TestClient) -> None:
    token = csrf(client.get("/ui/login?next=//evil.example/x").text)
    r = client.post(
        "/ui/login",
        data={"key": ADMIN_SECRET, "csrf": token, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/ui/"


def test_a_revoked_key_is_signed_out_at_once(client: TestClient) -> None:
    headers = make_key(client, "review", name="rita")
    sign_in(client, secret_of(headers))
    assert client.get("/ui/queue").status_code == 200
    key_id = client.get("/v1/keys").json()["items"]
    rita = next(k for k in key_id if k["name"] == "rita")
    assert client.delete(f"/v1/keys/{rita['id']}").status_code == 204
    r = client.get("/ui/queue", follow_redirects=False)
    assert r.status_code == 303 and "/ui/login" in r.headers["location"]


def test_sign_out_ends_the_session(client: TestClient) -> None:
    token = sign_in(client)
    r = client.post("/ui/logout", data={"csrf": token})
    assert r.url.path == "/ui/login"
    assert client.get("/ui/models", follow_redirects=False).status_code == 303


def test_review_keys_cannot_open_admin_pages(client: TestClient) -> None:
    sign_in(client, secret_of(make_key(client, "review", name="rev")))
    for path in ("/ui/admin/keys", "/ui/admin/models"):
        assert client.get(path).status_code == 403
    assert "Keys" not in client.get("/ui/queue").text.split("<main")[0]


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/ui/logout", {}),
        ("/ui/queue/claim", {}),
        ("/ui/next", {}),
        ("/ui/tickets/{id}/resolve", {"label": "stay"}),
        ("/ui/tickets/{id}/dismiss", {"reason": "x"}),
        ("/ui/tickets/{id}/release", {}),
        ("/ui/tickets/{id}/reopen", {}),
        ("/ui/tickets/{id}/heartbeat", {}),
        ("/ui/admin/keys", {"name": "sneaky", "scopes": "admin"}),
        ("/ui/admin/keys/{key}/revoke", {}),
        ("/ui/admin/models", {"spec": '{"name": "x"}'}),
        ("/ui/admin/models/churn", {"confidence_threshold": "0.1"}),
        ("/ui/admin/models/churn/status", {"status": "archived"}),
    ],
)
def test_posts_without_the_csrf_token_are_refused(
    client: TestClient, db: Database, path: str, form: dict[str, str]
) -> None:
    create_model_with_reference(client)
    post(client, low_confidence(1))
    reviewer = make_key(client, "review", name="victim")
    token = sign_in(client)
    with db.session() as s:
        ticket = s.scalars(select(Ticket)).one()
        key = s.scalars(select(ApiKey).where(ApiKey.name == "victim")).one()
    # the victim holds the ticket, so a forged resolve would otherwise reach the queue
    r = client.post("/v1/tickets/claim", headers=reviewer)
    assert r.status_code == 200
    url = path.format(id=ticket.id, key=key.id)
    before = client.get("/v1/tickets/summary").json()
    for attempt in (
        {**form},  # no token
        {**form, "csrf": "forged"},  # a wrong one
    ):
        r = client.post(url, data=attempt)
        assert r.status_code == 403, (url, r.status_code)
        assert "Form expired" in r.text
    # the right token from another site (a cross-origin form post) is refused too
    r = client.post(url, data={**form, "csrf": token}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert client.get("/v1/tickets/summary").json() == before
    with db.session(readonly=True) as s:
        assert s.get(Ticket, ticket.id).status == "claimed"  # type: ignore[union-attr]
        assert s.get(ApiKey, key.id).revoked_at is None  # type: ignore[union-attr]
        assert s.scalar(select(ApiKey).where(ApiKey.name == "sneaky")) is None
        model = s.scalars(select(MonitoredModel).where(MonitoredModel.name == "churn")).one()
        assert model.status == "active" and model.confidence_threshold == 0.6
    assert client.get("/ui/models").status_code == 200  # still signed in


def test_admin_edits_model_settings_through_the_api_rules(client: TestClient, db: Database) -> None:
    create_model(client)
    token = sign_in(client)
    page = client.get("/ui/admin/models/churn")
    assert page.status_code == 200 and 'value="0.6"' in page.text
    form = {
        "csrf": token,
        "confidence_threshold": "0.7",
        "window_kind": "count",
        "window_size": "2000",
        "window_step": "500",
        "alpha": "0.05",
        "correction": "bonferroni",
        "min_effect": "auto",
        "strict": "on",
        "opt_incident_open_after": "2",
        "opt_incident_of_last": "3",
        "opt_incident_close_after": "3",
        "opt_drift_sample_size": "10",
        "opt_out_of_range_tolerance": "0.5",
        "opt_audit_rate": "0",
        "opt_review_rate": "0.1",
    }
    r = client.post("/ui/admin/models/churn", data=form)
    assert r.status_code == 200 and "Settings of churn saved" in r.text
    body = client.get("/v1/models/churn").json()
    assert body["confidence_threshold"] == 0.7
    assert body["window"]["size"] == 2000
    assert body["drift"]["alpha"] == 0.05 and body["drift"]["correction"] == "bonferroni"
    assert body["options"]["review_rate"] == 0.1 and body["options"]["drift_sample_size"] == 10
    # what the API refuses, the form refuses, with the API's reason
    bad = {**form, "opt_incident_open_after": "5"}
    r = client.post("/ui/admin/models/churn", data=bad)
    assert r.status_code == 422 and "incident_open_after cannot exceed" in r.text
    assert client.get("/v1/models/churn").json()["options"]["incident_open_after"] == 2


def test_admin_registers_a_model_from_json(client: TestClient) -> None:
    token = sign_in(client)
    spec = (
        '{"name": "fraud", "task": "classification", "labels": ["ok", "fraud"],'
        ' "features": [{"name": "amount", "type": "numerical"}]}'
    )
    r = client.post("/ui/admin/models", data={"csrf": token, "spec": spec})
    assert r.status_code == 200 and r.url.path == "/ui/admin/models/fraud"
    assert client.get("/v1/models/fraud").status_code == 200
    r = client.post("/ui/admin/models", data={"csrf": token, "spec": spec})
    assert r.status_code == 422 and "already exists" in r.text
    r = client.post("/ui/admin/models", data={"csrf": token, "spec": '{"name": "x",'})
    assert r.status_code == 422 and "not valid JSON" in r.text


def test_evaluation_report_opens_sandboxed_behind_the_session(
    client: TestClient, db: Database, settings: Settings
) -> None:
    seed_traffic(client, db, settings, tickets=0)
    sign_in(client)
    evaluation = client.get("/v1/models/churn/drift").json()["items"][0]["id"]
    r = client.get(f"/ui/models/churn/evaluations/{evaluation}/report")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "sandbox" in r.headers["content-security-policy"]
    assert f"driftdesk · churn · evaluation {evaluation}" in r.text
    assert client.get("/ui/models/churn/evaluations/999999/report").status_code == 404


def test_queue_filters_and_pages(client: TestClient) -> None:
    create_model_with_reference(client)
    post(client, low_confidence(60))
    sign_in(client)
    page = client.get("/ui/queue?kind=low_confidence")
    assert page.status_code == 200
    assert page.text.count('class="badge kind"') == 50
    nxt = re.search(r'href="(/ui/queue\?[^"]*cursor=[^"]+)"', page.text)
    assert nxt
    rest = client.get(nxt.group(1).replace("&amp;", "&"))
    assert rest.text.count('class="badge kind"') == 10
    assert client.get("/ui/queue?kind=drift").text.count('class="badge kind"') == 0
    r = client.get("/ui/queue?model=nope")
    assert r.status_code == 200 and "no model named" in r.text


def test_every_kind_of_ticket_page_renders(
    client: TestClient, db: Database, settings: Settings
) -> None:
    seed_traffic(client, db, settings, tickets=2)
    r = client.patch("/v1/models/churn", json={"options": {"review_rate": 1.0}})
    assert r.status_code == 200, r.text
    first = client.post("/v1/tickets/claim", json={"kind": "low_confidence"}).json()
    r = client.post(f"/v1/tickets/{first['id']}/resolve", json={"label": "churn"})
    assert r.status_code == 200, r.text
    sign_in(client, secret_of(make_key(client, "review", name="second")))
    with db.session(readonly=True) as s:
        tickets = {t.kind: t.id for t in s.scalars(select(Ticket))}
    assert {"drift", "data_quality", "low_confidence", "second_review"} <= set(tickets)
    for kind, tid in tickets.items():
        page = client.get(f"/ui/tickets/{tid}")
        assert page.status_code == 200, (kind, page.text[-1500:])
        assert f"Ticket #{tid}" in page.text
    # an independent second review does not show the first reviewer's label
    review = client.get(f"/ui/tickets/{tickets['second_review']}").text
    assert "churn</td>" not in review and "Labels</h3>" not in review
    assert client.get("/ui/tickets/999999").status_code == 404
