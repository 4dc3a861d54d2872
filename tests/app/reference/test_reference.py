"""/v1/models/{name}/reference: JSON, CSV and Parquet baselines, from-window, the summary."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import Database
from app.main import create_app
from storage.tables import BlockCounts, Reference
from tests.conftest import ADMIN_SECRET, make_settings
from tests.factories import (
    create_model,
    feature_rows,
    make_key,
    predictions,
    reference_records,
)

URL = "/v1/models/churn/reference"


def frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rows = feature_rows(n, seed=seed)
    df = pd.DataFrame(rows)
    df["prediction"] = ["stay" if i % 4 else "churn" for i in range(n)]
    df["confidence"] = 0.8
    return df


def upload(client: TestClient, data: bytes, filename: str, ctype: str, **kw: Any) -> Any:
    return client.post(URL, files={"file": (filename, data, ctype)}, **kw)


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def test_json_reference_returns_its_summary(client: TestClient) -> None:
    create_model(client)
    records = reference_records(500)
    records[0]["features"]["age"] = None  # a missing value is counted, not refused
    r = client.post(URL, json={"records": records})
    assert r.status_code == 201, r.text
    ref = r.json()
    assert ref["rows"] == 500
    assert ref["source"] == "json"
    assert ref["created_by"]
    assert set(ref["features"]) == {"age", "income", "plan"}
    age = ref["features"]["age"]
    assert age["type"] == "numerical"
    assert age["count"] == 499
    assert age["missing"] == 1
    assert 35 < age["mean"] < 45
    assert age["min"] <= age["p05"] <= age["p50"] <= age["p95"] <= age["max"]
    plan = ref["features"]["plan"]
    assert plan["type"] == "categorical"
    assert plan["distinct"] == 3
    assert plan["top"][0]["value"] == "free"
    assert sum(t["count"] for t in plan["top"]) == 500
    assert ref["prediction"]["type"] == "categorical"
    assert {t["value"] for t in ref["prediction"]["top"]} == {"stay", "churn"}
    assert ref["confidence"]["mean"] == pytest.approx(0.9)

    assert client.get(URL).json() == ref
    brief = client.get("/v1/models/churn").json()["reference"]
    assert brief["id"] == ref["id"]
    assert brief["rows"] == 500
    assert brief["source"] == "json"


def test_get_without_a_reference_is_404(client: TestClient) -> None:
    create_model(client)
    r = client.get(URL)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert "reference" in r.json()["error"]["message"]


def test_a_new_reference_replaces_the_old_and_recounts_the_live_window(
    client: TestClient, db: Database
) -> None:
    create_model(client)  # count window of 1000 records, step 500
    client.post("/v1/models/churn/predictions", json={"predictions": predictions(1200)})
    first = client.post(URL, json={"records": reference_records(200)}).json()
    second = client.post(URL, json={"records": reference_records(300, seed=5)}).json()
    assert second["id"] != first["id"]
    assert client.get(URL).json()["id"] == second["id"]
    assert client.get("/v1/models/churn").json()["reference"]["rows"] == 300
    with db.session(readonly=True) as session:
        # the window is blocks 1 and 2 (records 500-1199), counted against each reference
        for ref_id in (first["id"], second["id"]):
            rows = session.scalar(
                select(func.sum(BlockCounts.rows)).where(BlockCounts.reference_id == ref_id)
            )
            assert rows == 700
        assert session.scalar(select(func.count()).select_from(Reference)) == 2


def test_bad_json_references_are_422_naming_the_field(client: TestClient, db: Database) -> None:
    create_model(client)
    good = reference_records(150)

    def with_bad(i: int, **changes: Any) -> dict[str, Any]:
        records = json.loads(json.dumps(good))
        for k, v in changes.items():
            if k.startswith("f_"):
                records[i]["features"][k[2:]] = v
            else:
                records[i][k] = v
        return {"records": records}

    cases: list[tuple[Any, list[str | int]]] = [
        (with_bad(7, f_age=float("nan")), ["records", 7, "features", "age"]),
        (with_bad(7, f_income=float("inf")), ["records", 7, "features", "income"]),
        (with_bad(7, f_age="old"), ["records", 7, "features", "age"]),
        (with_bad(7, f_plan=1.5), ["records", 7, "features", "plan"]),
        (with_bad(7, f_zip="75011"), ["records", 7, "features", "zip"]),
        (with_bad(7, prediction="maybe"), ["records", 7, "prediction"]),
        (with_bad(7, confidence=1.5), ["records", 7, "confidence"]),
        (with_bad(7, confidence=float("nan")), ["records", 7, "confidence"]),
        (with_bad(7, features="age=3"), ["records", 7, "features"]),
        (with_bad(7, weight=2), ["records", 7, "weight"]),
        ({"records": reference_records(99)}, ["records"]),
        ({"records": []}, ["records"]),
        ({"records": "all"}, ["records"]),
        ({"rows": good}, ["records"]),
        ({"records": good, "source": "prod"}, ["source"]),
        ([1, 2], ["records"]),
    ]
    for body, loc in cases:
        r = client.post(
            URL,
            content=json.dumps(body, allow_nan=True).encode(),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422, (loc, r.text)
        assert r.json()["error"]["details"][0]["loc"] == loc, r.json()
    r = client.post(URL, content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Reference)) == 0
    assert client.get(URL).status_code == 404


def test_csv_upload(client: TestClient) -> None:
    create_model(client)
    df = frame(300)
    df.loc[5, "age"] = None
    r = upload(client, csv_bytes(df), "baseline.csv", "text/csv")
    assert r.status_code == 201, r.text
    ref = r.json()
    assert ref["source"] == "csv"
    assert ref["rows"] == 300
    assert ref["features"]["age"]["missing"] == 1
    assert ref["features"]["income"]["mean"] == pytest.approx(df["income"].mean())
    assert {t["value"] for t in ref["prediction"]["top"]} == {"stay", "churn"}
    assert client.get(URL).json()["id"] == ref["id"]


def test_parquet_upload(client: TestClient) -> None:
    create_model(client)
    df = frame(250)
    df["plan"] = df["plan"].astype("category")
    r = upload(client, parquet_bytes(df), "baseline.parquet", "application/octet-stream")
    assert r.status_code == 201, r.text
    ref = r.json()
    assert ref["source"] == "parquet"
    assert ref["rows"] == 250
    assert ref["features"]["age"]["mean"] == pytest.approx(df["age"].mean())
    assert ref["features"]["plan"]["distinct"] == df["plan"].nunique()
    # the extension is not needed: the file's magic bytes say Parquet
    r = upload(client, parquet_bytes(df), "upload.bin", "application/octet-stream")
    assert r.json()["source"] == "parquet"


def test_bad_uploads_are_422_naming_row_and_column(client: TestClient, db: Database) -> None:
    create_model(client)
    df = frame(200)
    bad_value = df.astype({"age": object})
    bad_value.loc[17, "age"] = "unknown"
    extra = df.assign(zip="75011")
    bad_label = df.copy()
    bad_label.loc[3, "prediction"] = "maybe"
    for data, name, loc in [
        (csv_bytes(bad_value), "a.csv", ["file", "row", 17, "column", "age"]),
        (
            parquet_bytes(bad_value.astype({"age": str})),
            "a.parquet",
            ["file", "row", 0, "column", "age"],
        ),
        (csv_bytes(extra), "a.csv", ["file", "zip"]),
        (csv_bytes(bad_label), "a.csv", ["file", "row", 3, "column", "prediction"]),
        (csv_bytes(df.head(50)), "a.csv", ["records"]),
        (b"PAR1 this is not parquet", "a.parquet", ["file"]),
        (b"", "empty.csv", ["file"]),
    ]:
        r = upload(client, data, name, "application/octet-stream")
        assert r.status_code == 422, (loc, r.text)
        assert r.json()["error"]["details"][0]["loc"] == loc, r.json()
    # no file field
    r = client.post(
        URL, data={"other": "x"}, files={"attachment": ("a.csv", csv_bytes(df), "text/csv")}
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"] == ["file"]
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Reference)) == 0


def test_non_strict_models_ignore_extra_columns(client: TestClient) -> None:
    create_model(client, strict=False)
    r = upload(client, csv_bytes(frame(150).assign(zip="75011")), "a.csv", "text/csv")
    assert r.status_code == 201, r.text
    assert set(r.json()["features"]) == {"age", "income", "plan"}


@pytest.fixture
def small_client(db_url: str, db: Database) -> Iterator[TestClient]:
    settings = make_settings(db_url, max_upload_bytes=20_000, max_reference_rows=200)
    with TestClient(
        create_app(settings, database=db), headers={"Authorization": f"Bearer {ADMIN_SECRET}"}
    ) as c:
        yield c


def test_reference_limits_are_413(small_client: TestClient) -> None:
    create_model(small_client)
    r = upload(small_client, csv_bytes(frame(1000)), "big.csv", "text/csv")
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"
    r = small_client.post(URL, json={"records": reference_records(201)})
    assert r.status_code == 413, r.text
    assert "200" in r.json()["error"]["message"]
    r = small_client.post(URL, json={"records": reference_records(200)})
    assert r.status_code == 201


def test_from_window_freezes_live_traffic(client: TestClient) -> None:
    create_model(client)
    t0 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
    records = predictions(300)
    for i, r in enumerate(records):
        r["timestamp"] = (t0 + dt.timedelta(seconds=i)).isoformat()
    client.post("/v1/models/churn/predictions", json={"predictions": records})
    window = {"start": "2026-11-24T10:01:00Z", "end": "2026-11-24T10:04:00Z"}
    r = client.post(f"{URL}/from-window", json=window)
    assert r.status_code == 201, r.text
    ref = r.json()
    assert ref["source"] == "window"
    assert ref["rows"] == 180
    assert ref["window_start"] == window["start"]
    assert ref["window_end"] == window["end"]
    in_window = [r["prediction"] for r in records[60:240]]
    assert {t["value"]: t["count"] for t in ref["prediction"]["top"]} == {
        label: in_window.count(label) for label in set(in_window)
    }
    assert client.get(URL).json()["id"] == ref["id"]

    for body, status, loc in [
        ({"start": window["end"], "end": window["start"]}, 422, ["end"]),
        ({"start": window["start"], "end": window["start"]}, 422, ["end"]),
        ({"start": "2026-11-24T10:01:00", "end": window["end"]}, 422, ["start"]),
        ({"start": window["start"]}, 422, ["end"]),
        ({**window, "limit": 5}, 422, ["limit"]),
        ({"start": "2026-11-24T10:00:00Z", "end": "2026-11-24T10:01:00Z"}, 422, ["records"]),
    ]:
        r = client.post(f"{URL}/from-window", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]["details"][0]["loc"] == loc, body
    ingest = make_key(client, "ingest")
    assert client.post(f"{URL}/from-window", json=window, headers=ingest).status_code == 403
    assert client.get(URL).json()["id"] == ref["id"]


def test_from_window_of_a_regression_model(client: TestClient) -> None:
    create_model(client, name="price", task="regression", labels=None)
    records = [
        {
            "id": f"h{i}",
            "timestamp": "2026-11-24T10:00:00Z",
            "features": f,
            "prediction": 1000.0 + i,
        }
        for i, f in enumerate(feature_rows(120))
    ]
    client.post("/v1/models/price/predictions", json={"predictions": records})
    window = {"start": "2026-11-24T09:00:00Z", "end": "2026-11-24T11:00:00Z"}
    r = client.post("/v1/models/price/reference/from-window", json=window)
    assert r.status_code == 201, r.text
    assert r.json()["prediction"]["mean"] == pytest.approx(1059.5)


def test_reference_upload_needs_ingest_or_admin(client: TestClient) -> None:
    create_model(client)
    review, ingest = make_key(client, "review"), make_key(client, "ingest", name="i")
    body = {"records": reference_records(120)}
    assert client.post(URL, json=body, headers=review).status_code == 403
    assert client.post(URL, json=body, headers=ingest).status_code == 201
    assert client.get(URL, headers=review).status_code == 200
    assert client.get(URL, headers=ingest).status_code == 200
