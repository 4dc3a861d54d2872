"""Operations: /healthz, /readyz (database reachable and at head), /metrics, /openapi.json."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from app.db import Database
from app.ops import migrations
from tests.factories import create_model_with_reference, predictions

NO_KEY = {"Authorization": ""}


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name + ("{" + wanted + "}" if labels else "")) + r" (\S+)$"
    for line in text.splitlines():
        match = re.match(pattern, line)
        if match:
            return float(match.group(1))
    return 0.0


def test_healthz_needs_no_key(client: TestClient) -> None:
    r = client.get("/healthz", headers=NO_KEY)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_reports_the_revision(client: TestClient) -> None:
    r = client.get("/readyz", headers=NO_KEY)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "revision": sorted(migrations.head_revisions())}


def test_readyz_is_503_when_the_database_is_behind(client: TestClient, db_url: str) -> None:
    assert client.get("/readyz").status_code == 200
    migrations.downgrade(db_url, "-1")
    r = client.get("/readyz", headers=NO_KEY)
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "not_ready"
    assert "driftdesk migrate" in err["message"]
    assert client.get("/healthz").status_code == 200  # alive, just not ready
    migrations.upgrade(db_url)
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_database_is_unreachable(client: TestClient) -> None:
    app = client.app
    working = app.state.db  # type: ignore[attr-defined]
    gone = Database(
        create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:1/nothing", connect_args={"connect_timeout": 2}
        )
    )
    app.state.db = gone  # type: ignore[attr-defined]
    try:
        r = client.get("/readyz", headers=NO_KEY)
    finally:
        app.state.db = working  # type: ignore[attr-defined]
        gone.dispose()
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "not_ready"
    assert "unreachable" in r.json()["error"]["message"]


def test_metrics_count_requests_and_records_per_model(client: TestClient) -> None:
    create_model_with_reference(client)
    before = client.get("/metrics", headers=NO_KEY).text
    url = "/v1/models/churn/predictions"
    assert client.post(url, json={"predictions": predictions(7)}).status_code == 202
    bad = predictions(2, seed=4)
    bad[1]["features"]["age"] = "old"
    assert client.post(url, json={"predictions": bad}).status_code == 422

    r = client.get("/metrics", headers=NO_KEY)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    after = r.text
    assert "# TYPE driftdesk_records_ingested_total counter" in after
    assert "# TYPE driftdesk_http_request_duration_seconds histogram" in after

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("driftdesk_records_ingested_total", model="churn") == 7
    assert delta("driftdesk_records_rejected_total", model="churn") == 1
    route = "/v1/models/{name}/predictions"
    assert delta("driftdesk_http_requests_total", method="POST", route=route, status="202") == 1
    assert delta("driftdesk_http_requests_total", method="POST", route=route, status="422") == 1
    assert delta("driftdesk_http_request_duration_seconds_count", method="POST", route=route) == 2
    assert (
        metric(
            after,
            "driftdesk_http_request_duration_seconds_bucket",
            method="POST",
            route=route,
            le="+Inf",
        )
        >= 2
    )
    # unknown paths are one label, not one series per path
    client.get("/no/such/path/12345")
    text = client.get("/metrics").text
    assert "/no/such/path/12345" not in text
    assert 'route="unmatched"' in text


def test_openapi_documents_every_route(client: TestClient) -> None:
    schema = client.get("/openapi.json", headers=NO_KEY).json()
    paths = schema["paths"]
    for path, verbs in {
        "/v1/keys": {"get", "post"},
        "/v1/keys/{key_id}": {"delete"},
        "/v1/models": {"get", "post"},
        "/v1/models/{name}": {"get", "patch", "delete"},
        "/v1/models/{name}/reference": {"get", "post"},
        "/v1/models/{name}/reference/from-window": {"post"},
        "/v1/models/{name}/predictions": {"get", "post"},
        "/v1/models/{name}/feedback": {"post"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/metrics": {"get"},
    }.items():
        assert verbs <= set(paths[path]), path
    ingest = paths["/v1/models/{name}/predictions"]["post"]
    assert "202" in ingest["responses"]
    assert ingest["requestBody"]["content"]["application/json"]["example"]
