"""POST/GET /v1/models/{name}/predictions: ingest, idempotency, limits, every kind of bad input."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import Database
from app.ingest.store import decode_counts
from app.main import create_app
from storage.tables import BlockCounts, MonitoredModel, Prediction
from tests.conftest import ADMIN_SECRET, make_settings
from tests.factories import (
    create_model,
    create_model_with_file_reference,
    create_model_with_reference,
    make_key,
    predictions,
)

URL = "/v1/models/churn/predictions"


def post_raw(client: TestClient, text: str, url: str = URL) -> Any:
    return client.post(url, content=text.encode(), headers={"content-type": "application/json"})


def stored(db: Database) -> tuple[int, int, int]:
    """(prediction rows, block count rows, the model's record counter)."""
    with db.session(readonly=True) as session:
        rows = session.scalar(select(func.count()).select_from(Prediction))
        blocks = session.scalar(select(func.count()).select_from(BlockCounts))
        counter = session.scalar(select(func.coalesce(func.sum(MonitoredModel.record_count), 0)))
    return int(rows or 0), int(blocks or 0), int(counter or 0)


def block_rows(db: Database) -> int:
    with db.session(readonly=True) as session:
        return int(session.scalar(select(func.coalesce(func.sum(BlockCounts.rows), 0))) or 0)


def stamped(
    n: int, *, start: dt.datetime, seed: int = 1, prefix: str = "req"
) -> list[dict[str, Any]]:
    records = predictions(n, seed=seed, prefix=prefix)
    for i, r in enumerate(records):
        r["timestamp"] = (start + dt.timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    return records


T0 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)


def test_one_record_is_stored_as_sent(client: TestClient) -> None:
    create_model_with_reference(client)
    record = {
        "id": "req-8f3a",
        "timestamp": "2026-11-24T11:00:00+01:00",
        "features": {"age": 41, "income": 52000.5, "plan": "pro"},
        "prediction": "churn",
        "probabilities": {"stay": 0.46, "churn": 0.54},
        "model_version": "2026-11-01",
    }
    r = client.post(URL, json=record)
    assert r.status_code == 202, r.text
    assert set(r.json()) == {"accepted", "duplicates", "exceptions"}
    assert (r.json()["accepted"], r.json()["duplicates"]) == (1, 0)
    [item] = client.get(URL).json()["items"]
    assert item["id"] == "req-8f3a"
    assert item["timestamp"] == "2026-11-24T10:00:00Z"
    assert item["features"] == {"age": 41, "income": 52000.5, "plan": "pro"}
    assert item["prediction"] == "churn"
    assert item["probabilities"] == {"stay": 0.46, "churn": 0.54}
    assert item["confidence"] == pytest.approx(0.54)  # the top probability
    assert item["model_version"] == "2026-11-01"
    assert item["label"] is None
    received = dt.datetime.fromisoformat(item["received_at"])
    assert abs((dt.datetime.now(dt.UTC) - received).total_seconds()) < 60


def test_without_id_and_timestamp_the_server_fills_them(client: TestClient) -> None:
    create_model_with_reference(client)
    body = {"features": {"age": 30, "income": 1.0, "plan": "free"}, "prediction": "stay"}
    assert client.post(URL, json=body).status_code == 202
    assert client.post(URL, json=body).json()["accepted"] == 1  # no id: never a duplicate
    items = client.get(URL).json()["items"]
    assert len(items) == 2
    assert items[0]["id"] != items[1]["id"]
    for item in items:
        assert item["id"]
        assert item["confidence"] is None
        ts = dt.datetime.fromisoformat(item["timestamp"])
        assert abs((dt.datetime.now(dt.UTC) - ts).total_seconds()) < 60


def test_a_batch_is_stored_with_its_block_counts(client: TestClient, db: Database) -> None:
    create_model_with_reference(client)  # count window, step 500
    r = client.post(URL, json={"predictions": predictions(1200)})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1200
    assert r.json()["duplicates"] == 0
    rows, blocks, counter = stored(db)
    assert (rows, counter) == (1200, 1200)
    assert blocks == 3  # records 0-499, 500-999, 1000-1199
    assert block_rows(db) == 1200
    with db.session(readonly=True) as session:
        parts = session.scalars(select(BlockCounts).order_by(BlockCounts.block)).all()
        assert [(p.block, p.rows) for p in parts] == [(0, 500), (1, 500), (2, 200)]
        # every feature counts every row once: the age counters of a block sum to its rows
        counts = decode_counts(parts[0].counts)
        assert counts.sum() % 500 == 0
        assert int(counts.sum()) // 500 >= 3
    assert client.get("/v1/models/churn").json()["records"] == 1200


def test_counts_are_the_same_whichever_way_a_batch_is_counted(
    client: TestClient, db: Database
) -> None:
    # A batch stored whole into one block uses counts computed before the write
    # transaction; one with a duplicate is counted inside it. Same records, same counts.
    create_model_with_reference(client, name="whole")
    create_model_with_reference(client, name="split")
    batch = predictions(100, seed=5)
    r = client.post("/v1/models/whole/predictions", json={"predictions": batch})
    assert r.json()["accepted"] == 100
    r = client.post("/v1/models/split/predictions", json={"predictions": [*batch, batch[0]]})
    assert (r.json()["accepted"], r.json()["duplicates"]) == (100, 1)
    with db.session(readonly=True) as session:
        parts = session.execute(
            select(MonitoredModel.name, BlockCounts.rows, BlockCounts.counts).join(
                MonitoredModel, MonitoredModel.id == BlockCounts.model_id
            )
        ).all()
    by_model = {name: (rows, decode_counts(blob)) for name, rows, blob in parts}
    assert by_model["whole"][0] == by_model["split"][0] == 100
    assert np.array_equal(by_model["whole"][1], by_model["split"][1])
    assert by_model["whole"][1].sum() > 0


def test_time_windows_count_records_into_time_blocks(client: TestClient, db: Database) -> None:
    create_model_with_reference(client, window={"kind": "time", "size": "1h", "step": "10m"})
    records = stamped(30, start=T0)
    for i, r in enumerate(records):  # three 10-minute blocks
        r["timestamp"] = (T0 + dt.timedelta(minutes=i)).isoformat()
    assert client.post(URL, json={"predictions": records}).status_code == 202
    with db.session(readonly=True) as session:
        parts = session.scalars(select(BlockCounts).order_by(BlockCounts.block)).all()
    assert [p.rows for p in parts] == [10, 10, 10]
    assert [p.block for p in parts] == [int(T0.timestamp()) // 600 + k for k in range(3)]
    assert parts[0].first_ts == T0
    assert parts[0].last_ts == T0 + dt.timedelta(minutes=9)


def test_without_a_reference_rows_are_stored_without_counts(
    client: TestClient, db: Database
) -> None:
    create_model(client)
    assert client.post(URL, json={"predictions": predictions(10)}).json()["accepted"] == 10
    assert stored(db) == (10, 0, 10)


def test_same_ids_twice_are_duplicates_and_change_nothing(client: TestClient, db: Database) -> None:
    create_model_with_reference(client)
    batch = predictions(50)
    first = client.post(URL, json={"predictions": batch}).json()
    assert (first["accepted"], first["duplicates"]) == (50, 0)
    before_rows = client.get(URL, params={"limit": 1000}).json()["items"]
    before = stored(db)

    changed = [dict(r, prediction="churn", confidence=0.1) for r in batch]
    r = client.post(URL, json={"predictions": changed})
    assert r.status_code == 202
    assert r.json() == {"accepted": 0, "duplicates": 50, "exceptions": 0}
    assert stored(db) == before
    assert block_rows(db) == 50
    assert client.get(URL, params={"limit": 1000}).json()["items"] == before_rows

    # a mix: the old ones are duplicates, the new ones are stored
    mixed = batch[:10] + predictions(5, seed=7)
    assert client.post(URL, json={"predictions": mixed}).json()["accepted"] == 5
    assert client.post(URL, json={"predictions": mixed}).json()["duplicates"] == 15
    assert stored(db)[0] == 55
    assert stored(db)[2] == 55
    assert block_rows(db) == 55


def test_duplicates_inside_one_batch_keep_the_first(client: TestClient, db: Database) -> None:
    create_model_with_reference(client)
    a, b = predictions(2)
    first = dict(a, prediction="churn")
    r = client.post(URL, json={"predictions": [first, b, dict(a), dict(a, prediction="stay")]})
    assert r.json() == {"accepted": 2, "duplicates": 2, "exceptions": 0}
    items = {i["id"]: i for i in client.get(URL).json()["items"]}
    assert items[a["id"]]["prediction"] == "churn"
    assert stored(db) == (2, 1, 2)
    assert block_rows(db) == 2


def test_ids_are_per_model(client: TestClient) -> None:
    create_model_with_reference(client)
    create_model(client, name="other")
    record = predictions(1)[0]
    assert client.post(URL, json=record).json()["accepted"] == 1
    r = client.post("/v1/models/other/predictions", json=record)
    assert r.json()["accepted"] == 1


def test_regression_models_take_numbers(client: TestClient) -> None:
    create_model(client, name="price", task="regression", labels=None, confidence_threshold=None)
    url = "/v1/models/price/predictions"
    ok = {"features": {"age": 3, "income": 2.5, "plan": "pro"}, "prediction": 412000.5}
    assert client.post(url, json=ok).status_code == 202
    assert client.post(url, json=dict(ok, prediction=7)).status_code == 202
    for bad, loc in [
        (dict(ok, prediction="high"), ["prediction"]),
        (dict(ok, prediction=True), ["prediction"]),
        (dict(ok, probabilities={"a": 1.0}), ["probabilities"]),
    ]:
        r = client.post(url, json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["details"][0]["loc"] == loc
    r = post_raw(client, json.dumps(dict(ok, prediction=float("nan"))), url)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"] == ["prediction"]
    assert [i["prediction"] for i in client.get(url).json()["items"]] == [412000.5, 7]


def test_categories_may_be_sent_as_integers_and_features_may_be_missing(
    client: TestClient,
) -> None:
    create_model_with_reference(client)
    record = {"features": {"age": None, "plan": 3}, "prediction": "stay", "id": "x"}
    assert client.post(URL, json=record).status_code == 202
    [item] = client.get(URL).json()["items"]
    assert item["features"] == {"age": None, "plan": 3}


def test_strict_false_accepts_unknown_features(client: TestClient, db: Database) -> None:
    create_model_with_reference(client, strict=False)
    record = predictions(1)[0]
    record["features"] |= {"zip": "75011", "vip": True, "score": 3.5, "note": None}
    assert client.post(URL, json=record).status_code == 202
    assert client.get(URL).json()["items"][0]["features"]["zip"] == "75011"
    # kept as sent, but still plain finite values
    for value, text in [
        ([1, 2], "[1, 2]"),
        ({"a": 1}, '{"a": 1}'),
        (None, "NaN"),
        (None, "-Infinity"),
    ]:
        batch = predictions(4, seed=8)
        batch[2]["features"]["extra"] = value
        body = json.dumps({"predictions": batch}).replace('"extra": null', f'"extra": {text}')
        r = post_raw(client, body)
        assert r.status_code == 422, (text, r.text)
        assert r.json()["error"]["details"][0]["loc"] == ["predictions", 2, "features", "extra"]
    assert stored(db)[0] == 1


# --------------------------------------------------------------------------- 422


def _bad(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(record))
    for key, value in changes.items():
        if key.startswith("f_"):
            out["features"][key[2:]] = value
        elif value is _DROP:
            out.pop(key)
        else:
            out[key] = value
    return out


_DROP = object()
NAN, INF = float("nan"), float("inf")

BAD_RECORDS: list[tuple[str, dict[str, Any], list[str | int]]] = [
    ("NaN feature", {"f_age": NAN}, ["features", "age"]),
    ("Infinity feature", {"f_income": INF}, ["features", "income"]),
    ("-Infinity feature", {"f_income": -INF}, ["features", "income"]),
    ("NaN confidence", {"confidence": NAN}, ["confidence"]),
    ("Infinity confidence", {"confidence": INF}, ["confidence"]),
    ("NaN probability", {"probabilities": {"stay": NAN, "churn": 0.5}}, ["probabilities", "stay"]),
    ("text for a number", {"f_age": "forty"}, ["features", "age"]),
    ("bool for a number", {"f_age": True}, ["features", "age"]),
    ("list for a number", {"f_age": [1, 2]}, ["features", "age"]),
    ("object for a number", {"f_income": {"amount": 1}}, ["features", "income"]),
    ("float for a category", {"f_plan": 2.5}, ["features", "plan"]),
    ("bool for a category", {"f_plan": False}, ["features", "plan"]),
    ("list for a category", {"f_plan": ["pro"]}, ["features", "plan"]),
    ("unknown feature (strict)", {"f_zip": "75011"}, ["features", "zip"]),
    ("zone-less timestamp", {"timestamp": "2026-11-24T10:00:00"}, ["timestamp"]),
    ("date, not a timestamp", {"timestamp": "2026-11-24"}, ["timestamp"]),
    ("not a timestamp", {"timestamp": "yesterday"}, ["timestamp"]),
    ("unknown label", {"prediction": "maybe"}, ["prediction"]),
    ("null prediction", {"prediction": None}, ["prediction"]),
    ("list prediction", {"prediction": ["stay"]}, ["prediction"]),
    ("missing prediction", {"prediction": _DROP}, ["prediction"]),
    ("missing features", {"features": _DROP}, ["features"]),
    ("features not an object", {"features": [1, 2]}, ["features"]),
    ("confidence over 1", {"confidence": 1.5}, ["confidence"]),
    ("confidence as text", {"confidence": "high"}, ["confidence"]),
    (
        "probabilities not summing to 1",
        {"probabilities": {"stay": 0.5, "churn": 0.3}, "confidence": _DROP},
        ["probabilities"],
    ),
    (
        "probability of an unknown label",
        {"probabilities": {"stay": 0.5, "maybe": 0.5}},
        ["probabilities", "maybe"],
    ),
    ("probability over 1", {"probabilities": {"stay": 1.5}}, ["probabilities", "stay"]),
    ("empty id", {"id": ""}, ["id"]),
    ("id too long", {"id": "x" * 201}, ["id"]),
    ("id as a number", {"id": 17}, ["id"]),
    ("unknown field", {"score": 3}, ["score"]),
    ("model_version too long", {"model_version": "v" * 101}, ["model_version"]),
]


def test_every_kind_of_bad_record_is_422_naming_its_field(client: TestClient, db: Database) -> None:
    create_model_with_reference(client)
    good = predictions(6, seed=3)
    for what, changes, loc in BAD_RECORDS:
        batch = [dict(r) for r in good]
        batch[3] = _bad(good[3], **changes)
        r = post_raw(client, json.dumps({"predictions": batch}, allow_nan=True))
        assert r.status_code == 422, (what, r.text)
        err = r.json()["error"]
        assert err["code"] == "validation_error", what
        assert err["details"][0]["loc"] == ["predictions", 3, *loc], (what, err)
        assert err["message"], what
        # the same record alone: the location has no batch prefix
        r = post_raw(client, json.dumps(batch[3], allow_nan=True))
        assert r.status_code == 422, (what, r.text)
        assert r.json()["error"]["details"][0]["loc"] == loc, (what, r.json())
    # a rejected batch stores nothing, not even its valid records
    assert stored(db) == (0, 0, 0)
    assert client.get(URL).json()["items"] == []
    # and the good batch still goes in afterwards
    assert client.post(URL, json={"predictions": good}).json()["accepted"] == 6


def test_raw_nan_and_infinity_tokens_are_named(client: TestClient, db: Database) -> None:
    create_model_with_reference(client)
    head = '{"predictions": [{"features": {"age": 1, "income": 2, "plan": "pro"}, "prediction": "stay"}, '
    for token in ("NaN", "Infinity", "-Infinity"):
        text = head + '{"features": {"age": ' + token + ', "plan": "pro"}, "prediction": "stay"}]}'
        r = post_raw(client, text)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"][0]["loc"] == ["predictions", 1, "features", "age"]
        assert "finite" in r.json()["error"]["message"]
    # numbers too large for a float
    for number in ("1e400", "-1e999", "1" + "0" * 400):
        text = head + '{"features": {"income": ' + number + "}, " + '"prediction": "stay"}]}'
        r = post_raw(client, text)
        assert r.status_code == 422, (number, r.text)
        assert r.json()["error"]["details"][0]["loc"] == ["predictions", 1, "features", "income"]
    assert stored(db) == (0, 0, 0)


def test_the_nul_character_is_refused_wherever_it_is(client: TestClient, db: Database) -> None:
    # PostgreSQL text cannot hold U+0000: both backends refuse it with the field named
    create_model_with_reference(client)
    record = {"id": "n-1", "features": {"age": 1, "plan": "pro"}, "prediction": "stay"}
    places = [
        ({"id": "n\x001"}, ["id"]),
        ({"features": {"age": 1, "plan": "p\x00ro"}}, ["features", "plan"]),
        ({"features": {"age": 1, "pl\x00an": "pro"}}, ["features", "pl\x00an"]),
        ({"model_version": "v\x00"}, ["model_version"]),
    ]
    for change, loc in places:
        r = client.post(URL, json={"predictions": [record, {**record, "id": "n-2", **change}]})
        assert r.status_code == 422, (change, r.text)
        assert r.json()["error"]["details"][0]["loc"] == ["predictions", 1, *loc]
        assert "U+0000" in r.json()["error"]["message"]
    assert stored(db) == (0, 0, 0)
    # an escaped backslash before "u0000" is no NUL
    r = client.post(URL, json={**record, "features": {"age": 1, "plan": "\\u0000"}})
    assert r.status_code == 202, r.text
    assert client.get(URL).json()["items"][0]["features"]["plan"] == "\\u0000"


def test_batch_shape_errors(client: TestClient, db: Database) -> None:
    create_model_with_reference(client)
    record = predictions(1)[0]
    for body, loc in [
        ({"predictions": []}, ["predictions"]),
        ({"predictions": record}, ["predictions"]),
        ({"predictions": "all of them"}, ["predictions"]),
        ({"predictions": [record], "model": "churn"}, ["model"]),
        ({"predictions": [record, "not a record"]}, ["predictions", 1]),
        ([record], []),
        ("just text", []),
    ]:
        r = client.post(URL, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["details"][0]["loc"] == loc, body
    for text in ("{", "", "{'single': 'quotes'}", '{"predictions": [1,]}'):
        r = post_raw(client, text)
        assert r.status_code == 422, (text, r.text)
        assert r.json()["error"]["details"][0]["loc"] == ["body"]
    assert stored(db) == (0, 0, 0)


def test_confidence_is_validated_with_probabilities_present(client: TestClient) -> None:
    create_model_with_reference(client)
    record = predictions(1)[0] | {"probabilities": {"stay": 0.995, "churn": 0.004}}
    # within the tolerance of rounding: accepted
    assert client.post(URL, json=record).status_code == 202


# --------------------------------------------------------------------------- 413


@pytest.fixture
def small_client(db_url: str, db: Database) -> Iterator[TestClient]:
    settings = make_settings(db_url, max_body_bytes=4096, max_batch_records=5)
    app = create_app(settings, database=db)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_SECRET}"}) as c:
        yield c


def test_body_over_the_limit_is_413(small_client: TestClient, db: Database) -> None:
    create_model_with_file_reference(small_client)  # a file upload has its own, larger limit
    big = {"features": {"age": 1, "income": 2, "plan": "p" * 5000}, "prediction": "stay"}
    r = small_client.post(URL, json=big)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"
    assert "4096" in r.json()["error"]["message"]

    # streamed without a Content-Length: cut off while reading
    payload = json.dumps(big).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 1000):
            yield payload[i : i + 1000]

    r = small_client.post(URL, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"
    assert stored(db) == (0, 0, 0)

    # a small streamed body is fine
    payload = json.dumps(predictions(1)[0]).encode()
    r = small_client.post(URL, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text


def test_batch_over_the_limit_is_413(small_client: TestClient, db: Database) -> None:
    create_model_with_file_reference(small_client)
    r = small_client.post(URL, json={"predictions": predictions(6)})
    assert r.status_code == 413, r.text
    err = r.json()["error"]
    assert err["code"] == "payload_too_large"
    assert "6" in err["message"]
    assert "5" in err["message"]
    assert stored(db) == (0, 0, 0)
    assert small_client.post(URL, json={"predictions": predictions(5)}).json()["accepted"] == 5
    # feedback has the same limit
    fb = {"feedback": [{"id": f"req-1-{i}", "label": "stay"} for i in range(6)]}
    assert small_client.post("/v1/models/churn/feedback", json=fb).status_code == 413


# --------------------------------------------------------------------------- GET


def test_get_pages_in_time_order_with_a_cursor(client: TestClient) -> None:
    create_model_with_reference(client)
    records = stamped(25, start=T0)
    records.reverse()  # posted newest first: still read oldest first
    assert client.post(URL, json={"predictions": records}).json()["accepted"] == 25
    # two records at the same instant: the cursor must not skip or repeat either
    same = stamped(2, start=T0 + dt.timedelta(seconds=10), prefix="tie")
    same[1]["timestamp"] = same[0]["timestamp"]
    client.post(URL, json={"predictions": same})

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        r = client.get(URL, params=params)
        assert r.status_code == 200
        page = r.json()
        assert len(page["items"]) <= 4
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 27
    stamps = [i["timestamp"] for i in client.get(URL, params={"limit": 1000}).json()["items"]]
    assert stamps == sorted(stamps)


def test_get_filters_by_start_and_end(client: TestClient) -> None:
    create_model_with_reference(client)
    client.post(URL, json={"predictions": stamped(60, start=T0)})
    start = (T0 + dt.timedelta(seconds=10)).isoformat()
    end = (T0 + dt.timedelta(seconds=20)).isoformat()
    items = client.get(URL, params={"start": start, "end": end}).json()["items"]
    assert len(items) == 10  # start inclusive, end exclusive
    assert items[0]["timestamp"] == "2026-11-24T10:00:10Z"
    assert items[-1]["timestamp"] == "2026-11-24T10:00:19Z"
    # the same instant in another zone
    other_zone = (T0 + dt.timedelta(seconds=10)).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    items = client.get(URL, params={"start": other_zone.isoformat(), "end": end}).json()["items"]
    assert len(items) == 10
    # pages within a range
    first = client.get(URL, params={"start": start, "limit": 30}).json()
    rest = client.get(URL, params={"start": start, "limit": 30, "cursor": first["next_cursor"]})
    assert len(first["items"]) + len(rest.json()["items"]) == 50
    assert rest.json()["next_cursor"] is None


def test_get_rejects_bad_query_parameters(client: TestClient) -> None:
    create_model_with_reference(client)
    client.post(URL, json={"predictions": stamped(3, start=T0)})
    other_cursor = client.get("/v1/models", params={"limit": 1}).json()["next_cursor"]
    forged = __import__("base64").urlsafe_b64encode(b'{"ts": "2026-11-24T10:00:00", "id": 1}')
    for params, loc in [
        ({"start": "2026-11-24T10:00:00"}, ["query", "start"]),
        ({"end": "not a time"}, ["query", "end"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 1001}, ["query", "limit"]),
        ({"limit": "ten"}, ["query", "limit"]),
        ({"cursor": "%%%"}, ["query", "cursor"]),
        ({"cursor": "eyJ0cyI6IDF9"}, ["query", "cursor"]),  # {"ts": 1}
        ({"cursor": forged.decode().rstrip("=")}, ["query", "cursor"]),  # a zone-less time
        ({"cursor": other_cursor or "x"}, ["query", "cursor"]),
    ]:
        r = client.get(URL, params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["details"][0]["loc"] == loc, params


def test_reading_needs_review_and_posting_needs_ingest(client: TestClient) -> None:
    create_model_with_reference(client)
    ingest, review = make_key(client, "ingest"), make_key(client, "review", name="r")
    assert client.post(URL, json=predictions(1)[0], headers=ingest).status_code == 202
    assert client.post(URL, json=predictions(1, seed=2)[0], headers=review).status_code == 403
    assert client.get(URL, headers=review).status_code == 200
    assert client.get(URL, headers=ingest).status_code == 403
    assert len(client.get(URL).json()["items"]) == 1


def test_numerical_columns_are_stored_as_sent(client: TestClient) -> None:
    create_model_with_reference(client)
    values = [0, -1, 2**53, 1e-300, 123.456]
    batch = [
        {"id": f"n{i}", "features": {"age": v}, "prediction": "stay"} for i, v in enumerate(values)
    ]
    assert client.post(URL, json={"predictions": batch}).json()["accepted"] == len(values)
    got = {i["id"]: i["features"]["age"] for i in client.get(URL).json()["items"]}
    assert [got[f"n{i}"] for i in range(len(values))] == values
    assert np.isfinite(np.array(values, dtype=float)).all()
