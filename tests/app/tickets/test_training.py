"""GET /v1/models/{name}/training-data: the export's rows are the resolutions, in every format."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from exceptions_queue import export
from tests.exceptions_queue.helpers import seed
from tests.factories import make_key

URL = "/v1/models/churn/training-data"


def work_queue(client: TestClient, who: dict[str, str], n: int) -> list[dict[str, Any]]:
    """Claim and finish ``n`` tickets; returns what was resolved (dismissals export nothing)."""
    resolved = []
    for i in range(n):
        t = client.post("/v1/tickets/claim", headers=who).json()
        if i % 4 == 3:
            r = client.post(f"/v1/tickets/{t['id']}/dismiss", headers=who, json={"reason": "noise"})
            assert r.status_code == 200
            continue
        label = "churn" if i % 2 else "stay"
        r = client.post(
            f"/v1/tickets/{t['id']}/resolve", headers=who, json={"label": label, "note": f"n{i}"}
        )
        assert r.status_code == 200, r.text
        resolved.append(
            {"ticket": t, "label": label, "note": f"n{i}", "at": r.json()["resolved_at"]}
        )
    return resolved


def read(client: TestClient, fmt: str, **params: Any) -> list[dict[str, Any]]:
    r = client.get(URL, params={"format": fmt, **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(export.MEDIA_TYPES[fmt].split(";")[0])  # type: ignore[index]
    assert "X-Driftdesk-Until" in r.headers
    if fmt == "jsonl":
        return [orjson.loads(line) for line in r.content.splitlines()]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(r.text)))
    return pq.read_table(io.BytesIO(r.content)).to_pylist()


def normalise(row: dict[str, Any], fmt: str) -> tuple[Any, ...]:
    features = row["features"] if fmt == "jsonl" else {k: row[k] for k in ("age", "income", "plan")}
    return (
        row["prediction_id"],
        row["label"],
        row["note"],
        row["ticket_kind"],
        row["labelled_by"].split(" ")[0],
        str(row["prediction"]),
        round(float(row["confidence"]), 6),
        round(float(features["age"]), 6),
        str(features["plan"]),
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_rows_equal_the_resolutions(client: TestClient, fmt: str) -> None:
    seed(client, 12)
    ana = make_key(client, "review", name="ana")
    resolved = work_queue(client, ana, 12)
    rows = read(client, fmt)
    expected = [
        (
            r["ticket"]["prediction_id"],
            r["label"],
            r["note"],
            "low_confidence",
            "ana",
            r["ticket"]["predictions"][0]["prediction"],
            round(r["ticket"]["predictions"][0]["confidence"], 6),
            round(float(r["ticket"]["predictions"][0]["features"]["age"]), 6),
            r["ticket"]["predictions"][0]["features"]["plan"],
        )
        for r in resolved
    ]
    assert [normalise(row, fmt) for row in rows] == expected
    assert len(rows) == 9


def test_since_and_until_make_it_incremental(client: TestClient) -> None:
    seed(client, 6)
    ana = make_key(client, "review", name="ana")
    first = work_queue(client, ana, 3)
    r = client.get(URL)
    cut = r.headers["X-Driftdesk-Until"]
    second = work_queue(client, ana, 3)
    later = read(client, "jsonl", since=cut)
    assert [x["prediction_id"] for x in later] == [
        x["ticket"]["prediction_id"] for x in second if x
    ]
    earlier = read(client, "jsonl", until=cut)
    assert [x["prediction_id"] for x in earlier] == [x["ticket"]["prediction_id"] for x in first]


def test_pages_stream_past_one_page(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "PAGE", 2)
    seed(client, 5)
    ana = make_key(client, "review", name="ana")
    resolved = work_queue(client, ana, 5)
    for fmt in ("jsonl", "csv", "parquet"):
        rows = read(client, fmt)
        assert [r["prediction_id"] for r in rows] == [
            x["ticket"]["prediction_id"] for x in resolved
        ]
    table = pq.ParquetFile(io.BytesIO(client.get(URL, params={"format": "parquet"}).content))
    assert table.metadata.num_row_groups == 2


def test_empty_export_is_still_a_valid_file(client: TestClient) -> None:
    seed(client, 0)
    assert client.get(URL).content == b""
    assert read(client, "csv") == []
    assert read(client, "parquet") == []


def test_status_codes(client: TestClient) -> None:
    seed(client, 0)
    assert client.get(URL, headers={"Authorization": "Bearer nope"}).status_code == 401
    ingest = make_key(client, "ingest", name="model")
    assert client.get(URL, headers=ingest).status_code == 403
    r = client.get("/v1/models/nope/training-data")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    for params in (
        {"format": "xlsx"},
        {"since": "2026-11-24T10:00:00"},  # no zone
        {"since": "2026-11-25T10:00:00Z", "until": "2026-11-24T10:00:00Z"},
    ):
        r = client.get(URL, params=params)
        assert r.status_code == 422, params
        assert r.json()["error"]["code"] == "validation_error"
    now = dt.datetime.now(dt.UTC).isoformat()
    assert client.get(URL, params={"until": now}).status_code == 200
