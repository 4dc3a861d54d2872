"""Client against the loopback fake: paths, verbs, bodies, errors, pagination, files."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from driftdesk_client import Client, DriftdeskConnectionError, DriftdeskError, Page


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    payload = b"" if body is None else json.dumps(body).encode()
    return status, dict(headers or {}), payload


@pytest.fixture
def client(fake: Any) -> Any:
    fake.handler = lambda seen: reply(200, {"ok": True})
    with Client(fake.url, fake.key) as made:
        yield made


CALLS: list[tuple[Callable[[Client], Any], str, str, Any]] = [
    (
        lambda c: c.create_model(
            "churn",
            task="classification",
            features=[{"name": "age", "type": "numerical"}],
            labels=["stay", "churn"],
            confidence_threshold=0.6,
        ),
        "POST",
        "/v1/models",
        {
            "name": "churn",
            "task": "classification",
            "features": [{"name": "age", "type": "numerical"}],
            "labels": ["stay", "churn"],
            "confidence_threshold": 0.6,
        },
    ),
    (lambda c: c.get_model("a/b"), "GET", "/v1/models/a%2Fb", None),
    (
        lambda c: c.update_model("churn", strict=False),
        "PATCH",
        "/v1/models/churn",
        {"strict": False},
    ),
    (lambda c: c.delete_model("churn"), "DELETE", "/v1/models/churn", None),
    (
        lambda c: c.upload_reference("churn", [{"features": {"age": 1}, "prediction": "stay"}]),
        "POST",
        "/v1/models/churn/reference",
        {"records": [{"features": {"age": 1}, "prediction": "stay"}]},
    ),
    (
        lambda c: c.reference_from_window(
            "churn", datetime(2026, 11, 24, tzinfo=UTC), "2026-11-25T00:00:00Z"
        ),
        "POST",
        "/v1/models/churn/reference/from-window",
        {"start": "2026-11-24T00:00:00+00:00", "end": "2026-11-25T00:00:00Z"},
    ),
    (lambda c: c.get_reference("churn"), "GET", "/v1/models/churn/reference", None),
    (
        lambda c: c.post_predictions("churn", [{"id": "r1", "features": {}, "prediction": 1}]),
        "POST",
        "/v1/models/churn/predictions",
        {"predictions": [{"id": "r1", "features": {}, "prediction": 1}]},
    ),
    (
        lambda c: c.post_feedback("churn", [{"id": "r1", "label": "stay"}]),
        "POST",
        "/v1/models/churn/feedback",
        {"feedback": [{"id": "r1", "label": "stay"}]},
    ),
    (lambda c: c.evaluate_drift("churn"), "POST", "/v1/models/churn/drift/evaluate", None),
    (lambda c: c.get_ticket(7), "GET", "/v1/tickets/7", None),
    (
        lambda c: c.resolve_ticket(7, "stay", note="checked"),
        "POST",
        "/v1/tickets/7/resolve",
        {"label": "stay", "note": "checked"},
    ),
    (
        lambda c: c.dismiss_ticket(7, "noise"),
        "POST",
        "/v1/tickets/7/dismiss",
        {"reason": "noise"},
    ),
    (lambda c: c.release_ticket(7), "POST", "/v1/tickets/7/release", None),
    (
        lambda c: c.create_key("reviewer-ana", ["review"]),
        "POST",
        "/v1/keys",
        {"name": "reviewer-ana", "scopes": ["review"]},
    ),
    (lambda c: c.delete_key("k1"), "DELETE", "/v1/keys/k1", None),
    (
        lambda c: c.create_alert_channel(
            "ops", "webhook", "https://example.invalid/hook", min_severity="warning", secret="s"
        ),
        "POST",
        "/v1/alert-channels",
        {
            "name": "ops",
            "kind": "webhook",
            "target": "https://example.invalid/hook",
            "min_severity": "warning",
            "secret": "s",
            "models": None,
        },
    ),
    (lambda c: c.delete_alert_channel("ops"), "DELETE", "/v1/alert-channels/ops", None),
    (lambda c: c.test_alert_channel("ops"), "POST", "/v1/alert-channels/ops/test", None),
]


@pytest.mark.parametrize(("call", "method", "path", "body"), CALLS)
def test_endpoints_use_the_contract_paths(
    fake: Any, client: Client, call: Callable[[Client], Any], method: str, path: str, body: Any
) -> None:
    ingest = path.endswith(("/predictions", "/feedback"))  # answered by the fake's ingest
    expected = {"accepted": 1, "duplicates": 0, "exceptions": 0} if ingest else {"ok": True}
    assert call(client) == expected
    seen = fake.requests[-1]
    assert (seen.method, seen.path) == (method, path)
    assert seen.headers["authorization"] == f"Bearer {fake.key}"
    assert (json.loads(seen.body) if seen.body else None) == body


def test_error_shape_becomes_driftdesk_error(fake: Any, client: Client) -> None:
    error = {"code": "not_found", "message": "no model named 'x'", "details": ["name"]}
    fake.handler = lambda seen: reply(404, {"error": error})
    with pytest.raises(DriftdeskError) as caught:
        client.get_model("x")
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert caught.value.message == "no model named 'x'"
    assert caught.value.details == ["name"]
    assert str(caught.value) == "HTTP 404 not_found: no model named 'x' [\"name\"]"


def test_an_error_of_another_shape_is_still_readable(fake: Any, client: Client) -> None:
    fake.handler = lambda seen: (502, {"Content-Type": "text/html"}, b"<h1>Bad   gateway</h1>")
    with pytest.raises(DriftdeskError) as caught:
        client.list_models()
    assert (caught.value.status, caught.value.code) == (502, "http_502")
    assert caught.value.message == "<h1>Bad gateway</h1>"


def test_unreachable_service_is_a_connection_error(down_port: int) -> None:
    with Client(f"http://127.0.0.1:{down_port}", "k") as client:
        with pytest.raises(DriftdeskConnectionError) as caught:
            client.get_model("churn")
        assert caught.value.status == 0
        assert caught.value.code == "connection_error"
        assert client.healthy() is False


def test_pagination_follows_next_cursor(fake: Any, client: Client) -> None:
    pages = {None: (["t1", "t2"], "c1"), "c1": (["t3", "t4"], "c2"), "c2": (["t5"], None)}

    def handler(seen: Any) -> Any:
        cursor = seen.query.get("cursor", [None])[0]
        items, following = pages[cursor]
        return reply(200, {"items": [{"id": i} for i in items], "next_cursor": following})

    fake.handler = handler
    ids = [t["id"] for t in client.iter_tickets(status="open", model="churn", page_size=2)]
    assert ids == ["t1", "t2", "t3", "t4", "t5"]
    queries = [r.query for r in fake.requests]
    assert [q.get("cursor") for q in queries] == [None, ["c1"], ["c2"]]
    assert all(q["status"] == ["open"] and q["limit"] == ["2"] for q in queries)

    page = client.list_tickets(kind="drift", cursor="c1")
    assert page == Page([{"id": "t3"}, {"id": "t4"}], "c2")
    assert fake.requests[-1].query == {"kind": ["drift"], "cursor": ["c1"]}


def test_list_predictions_sends_the_window(fake: Any, client: Client) -> None:
    fake.handler = lambda seen: reply(200, {"items": [], "next_cursor": None})
    client.list_predictions("churn", start=datetime(2026, 1, 1, tzinfo=UTC), limit=10)
    seen = fake.requests[-1]
    assert seen.path == "/v1/models/churn/predictions"
    assert seen.query == {"start": ["2026-01-01T00:00:00+00:00"], "limit": ["10"]}
    with pytest.raises(ValueError, match="timezone-aware"):
        client.list_predictions("churn", start=datetime(2026, 1, 1))


def test_claim_returns_none_when_the_queue_is_empty(fake: Any, client: Client) -> None:
    fake.handler = lambda seen: reply(204)
    assert client.claim_ticket(model="churn", lease_seconds=60) is None
    assert json.loads(fake.requests[-1].body) == {"model": "churn", "lease_seconds": 60}
    fake.handler = lambda seen: reply(200, {"id": 3, "status": "claimed"})
    assert client.claim_ticket() == {"id": 3, "status": "claimed"}


def test_dataframe_reference_is_uploaded_as_a_csv_file(fake: Any, client: Client) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"age": [41, 30], "plan": ["pro", "basic"], "label": ["stay", "churn"]})
    fake.handler = lambda seen: reply(201, {"rows": 2})
    assert client.upload_reference("churn", frame) == {"rows": 2}
    seen = fake.requests[-1]
    assert seen.path == "/v1/models/churn/reference"
    assert seen.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = seen.body.decode()
    assert 'name="file"; filename="reference.csv"' in body
    assert "Content-Type: text/csv" in body
    assert "age,plan,label\n41,pro,stay\n30,basic,churn\n" in body


def test_reference_file_upload_from_a_path(fake: Any, client: Client, tmp_path: Path) -> None:
    path = tmp_path / "baseline.parquet"
    path.write_bytes(b"PAR1-not-really")
    client.upload_reference_file("churn", path)
    body = fake.requests[-1].body
    assert b'name="file"; filename="baseline.parquet"' in body
    assert b"Content-Type: application/vnd.apache.parquet" in body
    assert b"PAR1-not-really" in body


def test_training_data_export_is_streamed_to_a_file(
    fake: Any, client: Client, tmp_path: Path
) -> None:
    lines = b"".join(b'{"id": "p%d", "label": "stay"}\n' % i for i in range(20_000))
    fake.handler = lambda seen: (200, {"Content-Type": "application/x-ndjson"}, lines)
    target = tmp_path / "train.jsonl"
    written = client.export_training_data("churn", target, since="2026-01-01T00:00:00Z")
    assert written == len(lines)
    assert target.read_bytes() == lines
    seen = fake.requests[-1]
    assert seen.path == "/v1/models/churn/training-data"
    assert seen.query == {"format": ["jsonl"], "since": ["2026-01-01T00:00:00Z"]}


def test_failed_export_leaves_no_file(fake: Any, client: Client, tmp_path: Path) -> None:
    error = {"error": {"code": "forbidden", "message": "needs the review scope", "details": []}}
    fake.handler = lambda seen: reply(403, error)
    target = tmp_path / "train.csv"
    with pytest.raises(DriftdeskError, match="needs the review scope"):
        client.export_training_data("churn", target, format="csv")
    assert list(tmp_path.iterdir()) == []


def test_drift_report_is_html(fake: Any, client: Client) -> None:
    fake.handler = lambda seen: (200, {"Content-Type": "text/html"}, b"<html>report</html>")
    assert client.drift_report("churn", 12) == "<html>report</html>"
    assert fake.requests[-1].query == {"evaluation": ["12"]}


def test_lists_of_keys_and_channels_gather_every_page(fake: Any, client: Client) -> None:
    def handler(seen: Any) -> Any:
        if "cursor" in seen.query:
            return reply(200, {"items": [{"id": "b"}], "next_cursor": None})
        return reply(200, {"items": [{"id": "a"}], "next_cursor": "n"})

    fake.handler = handler
    assert client.list_keys() == [{"id": "a"}, {"id": "b"}]
    assert client.list_alert_channels() == [{"id": "a"}, {"id": "b"}]
    assert [r.path for r in fake.requests] == ["/v1/keys"] * 2 + ["/v1/alert-channels"] * 2
