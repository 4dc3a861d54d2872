"""Every operation in the OpenAPI document × every kind of caller, as the contract says.

Callers: no key, an unknown key, a revoked key, and keys with the ingest,
review and admin scopes. An operation missing from ``SCOPES`` fails the test,
so a new route cannot skip this. Paths name a model and ids that do not exist,
so an admitted caller gets 404/422 (or 200) and nothing changes.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_settings
from tests.factories import make_key

INGEST, REVIEW, ADMIN = "ingest", "review", "admin"
PUBLIC = "public"

# Who may call each operation (admin holds every scope). README: "Keys and scopes".
SCOPES: dict[tuple[str, str], set[str]] = {
    ("GET", "/healthz"): {PUBLIC},
    ("GET", "/readyz"): {PUBLIC},
    ("GET", "/metrics"): {PUBLIC},  # unless DRIFTDESK_METRICS_TOKEN is set
    ("POST", "/v1/keys"): {ADMIN},
    ("GET", "/v1/keys"): {ADMIN},
    ("DELETE", "/v1/keys/{key_id}"): {ADMIN},
    ("POST", "/v1/models"): {ADMIN},
    ("GET", "/v1/models"): {REVIEW, ADMIN},
    ("GET", "/v1/models/{name}"): {INGEST, REVIEW, ADMIN},  # the client reads its schema
    ("PATCH", "/v1/models/{name}"): {ADMIN},
    ("DELETE", "/v1/models/{name}"): {ADMIN},
    ("POST", "/v1/models/{name}/reference"): {INGEST, ADMIN},
    ("GET", "/v1/models/{name}/reference"): {INGEST, REVIEW, ADMIN},
    ("POST", "/v1/models/{name}/reference/from-window"): {ADMIN},
    ("POST", "/v1/models/{name}/predictions"): {INGEST, ADMIN},
    ("GET", "/v1/models/{name}/predictions"): {REVIEW, ADMIN},
    ("POST", "/v1/models/{name}/feedback"): {INGEST, ADMIN},
    ("GET", "/v1/models/{name}/drift"): {REVIEW, ADMIN},
    ("POST", "/v1/models/{name}/drift/evaluate"): {ADMIN},
    ("GET", "/v1/models/{name}/drift/report"): {REVIEW, ADMIN},
    ("GET", "/v1/models/{name}/drift/incidents"): {REVIEW, ADMIN},
    ("GET", "/v1/models/{name}/training-data"): {REVIEW, ADMIN},
    ("GET", "/v1/models/{name}/performance"): {REVIEW, ADMIN},
    ("GET", "/v1/models/{name}/performance/incidents"): {REVIEW, ADMIN},
    ("GET", "/v1/workforce"): {REVIEW, ADMIN},
    ("GET", "/v1/tickets"): {REVIEW, ADMIN},
    ("GET", "/v1/tickets/summary"): {REVIEW, ADMIN},
    ("GET", "/v1/tickets/{ticket_id}"): {REVIEW, ADMIN},
    ("POST", "/v1/tickets/claim"): {REVIEW, ADMIN},
    ("POST", "/v1/tickets/{ticket_id}/heartbeat"): {REVIEW, ADMIN},
    ("POST", "/v1/tickets/{ticket_id}/resolve"): {REVIEW, ADMIN},
    ("POST", "/v1/tickets/{ticket_id}/dismiss"): {REVIEW, ADMIN},
    ("POST", "/v1/tickets/{ticket_id}/release"): {REVIEW, ADMIN},
    ("POST", "/v1/tickets/{ticket_id}/reopen"): {REVIEW, ADMIN},
    ("POST", "/v1/alert-channels"): {ADMIN},
    ("GET", "/v1/alert-channels"): {REVIEW, ADMIN},
    ("PATCH", "/v1/alert-channels/{name}"): {ADMIN},
    ("DELETE", "/v1/alert-channels/{name}"): {ADMIN},
    ("POST", "/v1/alert-channels/{name}/test"): {ADMIN},
    ("POST", "/v1/alert-channels/{name}/replay"): {ADMIN},
    ("GET", "/v1/alerts"): {REVIEW, ADMIN},
    ("GET", "/v1/alerts/{alert_id}"): {REVIEW, ADMIN},
    ("POST", "/v1/alert-deliveries/{delivery_id}/replay"): {ADMIN},
    ("POST", "/v1/alert-silences"): {ADMIN},
    ("GET", "/v1/alert-silences"): {REVIEW, ADMIN},
    ("DELETE", "/v1/alert-silences/{silence_id}"): {ADMIN},
}


def operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def concrete(path: str) -> str:
    """The path with parameters that name nothing (nothing is found, nothing changes)."""
    out = path
    for name in ("name", "key_id", "delivery_id"):
        out = out.replace("{" + name + "}", "no-such-thing")
    for name in ("ticket_id", "alert_id", "silence_id"):
        out = out.replace("{" + name + "}", "999999")
    assert "{" not in out, f"give {path}'s parameter a value in concrete()"
    return out


def call(client: TestClient, method: str, path: str, secret: str | None) -> int:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    else:
        headers["Authorization"] = ""
    body = b"{}" if method in {"POST", "PATCH", "PUT"} else None
    return client.request(method, concrete(path), headers=headers, content=body).status_code


def test_every_operation_answers_every_caller_as_the_contract_says(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    ops = operations(schema)
    missing = [op for op in ops if op not in SCOPES]
    assert missing == [], f"say who may call these operations in SCOPES: {missing}"
    assert len(ops) >= 40
    secrets = {
        scope: make_key(client, scope, name=f"matrix-{scope}")["Authorization"][7:]
        for scope in (INGEST, REVIEW)
    }
    secrets[ADMIN] = client.headers["Authorization"][7:]
    revoked = client.post("/v1/keys", json={"name": "gone", "scopes": [INGEST, REVIEW, ADMIN]})
    assert client.delete(f"/v1/keys/{revoked.json()['id']}").status_code in (200, 204)
    callers: dict[str, str | None] = {
        "no key": None,
        "unknown key": "dd_unknown_0123456789abcdefghijklmnop",
        "revoked key": revoked.json()["secret"],
    }
    wrong: list[str] = []
    for method, path in ops:
        allowed = SCOPES[(method, path)]
        for who, secret in callers.items():
            status = call(client, method, path, secret)
            expect_open = PUBLIC in allowed
            if (status == 401) == expect_open:
                wrong.append(f"{who}: {method} {path} -> {status}")
        for scope in (INGEST, REVIEW, ADMIN):
            status = call(client, method, path, secrets[scope])
            admitted = PUBLIC in allowed or scope in allowed
            if (admitted and status in (401, 403)) or (not admitted and status != 403):
                wrong.append(f"{scope}: {method} {path} -> {status}")
    assert wrong == [], "\n".join(wrong)


def test_metrics_can_require_a_token(db_url: str) -> None:
    settings = make_settings(db_url, metrics_token="scrape-0123456789")
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        r = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = client.get("/metrics", headers={"Authorization": "Bearer scrape-0123456789"})
        assert r.status_code == 200 and "driftdesk_" in r.text
        assert client.get("/healthz").status_code == 200  # the probes stay open
        assert client.get("/readyz").status_code == 200
