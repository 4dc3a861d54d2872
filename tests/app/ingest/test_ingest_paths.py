"""The column-wise decoder against the general path, and the write paths of both backends.

* Whatever the fast decoder (msgspec) accepts, the general path (JSON, pydantic,
  per-column checks) accepts with the same values; whatever it cannot decide, it
  leaves to the general path.
* What COPY's text format must escape (tabs, newlines, backslashes) is stored and
  read back as sent; duplicates mixed with new records keep each row's own values.
* On PostgreSQL two ingest transactions of one model overlap: neither waits on a
  lock of the other for its rows and block counts (only the tickets' statements
  queue, on an advisory lock). A replica storing one of the ids between the
  reservation and COPY makes it a duplicate, not an error.
* On SQLite, an id stored between the read and the write lock is found again
  under the lock.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.catalog import service as catalog
from app.db import Database
from app.ingest.flows import PreparedBatch, prepare, rule_config, write
from app.ingest.parse import ValidatedBatch, decode_batch, parse_json, parse_records, validate_batch
from app.ingest.sketches import get_spec
from app.ingest.store import Raced
from app.settings import Settings
from storage.base import utcnow
from storage.tables import BlockCounts, MonitoredModel, Prediction
from tests.factories import create_model, create_model_with_reference, predictions

URL = "/v1/models/churn/predictions"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _model(db: Database, name: str = "churn") -> MonitoredModel:
    with db.session(readonly=True) as session:
        return catalog.active_model(session, name)


def _general(raw: bytes, model: MonitoredModel, settings: Settings) -> ValidatedBatch:
    records, prefix = parse_records(parse_json(raw, "application/json"), settings)
    return validate_batch(model, records, now=NOW, prefix=prefix)


def _same(fast: ValidatedBatch, general: ValidatedBatch) -> None:
    assert fast.timestamps == general.timestamps
    assert fast.outputs == general.outputs
    np.testing.assert_array_equal(fast.confidence, general.confidence)
    assert fast.probabilities == general.probabilities
    assert fast.model_versions == general.model_versions
    assert [json.loads(f) for f in fast.features_json] == [
        json.loads(f) for f in general.features_json
    ]
    assert fast.columns.rows == general.columns.rows
    assert fast.columns.values.keys() == general.columns.values.keys()
    for name, column in general.columns.values.items():
        np.testing.assert_array_equal(fast.columns.values[name], column, err_msg=name)
        assert fast.columns.values[name].dtype == column.dtype, name


def test_the_fast_decoder_agrees_with_the_general_path(
    client: TestClient, db: Database, settings: Settings
) -> None:
    create_model(client)
    model = _model(db)
    good = predictions(5, seed=2)
    batches: list[list[dict[str, Any]]] = [
        good,
        # integers for numbers and categories, nulls, missing features
        [
            {**good[0], "features": {"age": 41, "income": None, "plan": 3}},
            {**good[1], "features": {}},
            {**good[2], "features": {"age": -0.0, "plan": None}},
        ],
        # no ids, no timestamps, timestamps with offsets and fractions
        [
            {"features": {"age": 1.5}, "prediction": "stay"},
            {**good[1], "timestamp": "2026-11-24T12:30:00.250+02:00"},
            {**good[2], "timestamp": "2026-11-24 10:00:00.123456z"},
        ],
        # probabilities (confidence from them when absent), model versions
        [
            {**good[0], "probabilities": {"stay": 0.7, "churn": 0.3}, "confidence": None},
            {**good[1], "probabilities": {"stay": 0.2, "churn": 0.8}, "model_version": "v2"},
            {**good[2], "confidence": 1},
        ],
        # text that JSON escapes
        [{**good[0], "id": 'a\t"b"\\c\nd', "features": {"plan": "é\u2028\\u0001"}}],
    ]
    for batch in batches:
        raw = json.dumps({"predictions": batch}).encode()
        fast = decode_batch(raw, model, now=NOW, settings=settings)
        assert fast is not None, batch
        general = _general(raw, model, settings)
        _same(fast, general)
        given = [r.get("id") for r in batch]
        assert [c if g else None for c, g in zip(fast.client_ids, given, strict=True)] == given


def test_the_fast_decoder_leaves_what_it_cannot_decide_to_the_general_path(
    client: TestClient, db: Database, settings: Settings
) -> None:
    create_model(client)
    model = _model(db)
    record = predictions(1)[0]
    undecided = [
        json.dumps(record),  # one record, not a batch
        '{"predictions": []}',
        '{"predictions": [{"features": {"age": NaN}, "prediction": "stay"}]}',
        '{"predictions": [{"features": {"age": 1e400}, "prediction": "stay"}]}',
        json.dumps({"predictions": [{**record, "prediction": "maybe"}]}),
        json.dumps({"predictions": [{**record, "prediction": 1}]}),  # not a label as sent
        json.dumps({"predictions": [{**record, "features": {"zip": "75011"}}]}),
        json.dumps({"predictions": [{**record, "features": {"age": True}}]}),
        json.dumps({"predictions": [{**record, "timestamp": "2026-11-24T10:00:00"}]}),
        json.dumps({"predictions": [{**record, "timestamp": 1764000000}]}),
        json.dumps({"predictions": [{**record, "probabilities": {"stay": 0.5}}]}),
        json.dumps({"predictions": [{**record, "id": "x\u0000"}]}),
        json.dumps({"predictions": [record], "more": 1}),
    ]
    for text in undecided:
        assert decode_batch(text.encode(), model, now=NOW, settings=settings) is None, text
    # a model that keeps unknown features (strict=false) always takes the general path
    create_model(client, name="loose", strict=False)
    raw = json.dumps({"predictions": [record]}).encode()
    assert decode_batch(raw, _model(db, "loose"), now=NOW, settings=settings) is None
    # what the general path accepts of those, it stores
    assert (
        client.post(URL, json={"predictions": [{**record, "timestamp": 1764000000}]}).json()[
            "accepted"
        ]
        == 1
    )


def test_text_copy_escapes_is_stored_as_sent(client: TestClient) -> None:
    create_model_with_reference(client)
    batch = predictions(4, seed=5)
    batch[0]["id"] = "tab\there"
    batch[1]["id"] = "new\nline\rand\\backslash"
    batch[1]["model_version"] = "v\\1\t"
    batch[2]["features"]["plan"] = 'p\\r\t"o"\n'
    batch[3]["probabilities"] = {"stay": 0.75, "churn": 0.25}
    # pretty-printed: the features' JSON text holds newlines and indentation
    body = json.dumps({"predictions": batch}, indent=2)
    r = client.post(URL, content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 4
    items = {i["id"]: i for i in client.get(URL, params={"limit": 100}).json()["items"]}
    for record in batch:
        item = items[record["id"]]
        assert item["features"] == record["features"]
        assert item["model_version"] == record.get("model_version")
        assert item["probabilities"] == record.get("probabilities")
        assert item["prediction"] == record["prediction"]


def test_duplicates_mixed_with_new_records_keep_each_rows_values(
    client: TestClient, db: Database
) -> None:
    create_model_with_reference(client)
    first = predictions(10, seed=1)
    assert client.post(URL, json={"predictions": first[::2]}).json()["accepted"] == 5
    # old and new ids interleaved, and one new id twice (the first one counts)
    second = [*first, {**first[1], "features": {"age": 99.0}}]
    r = client.post(URL, json={"predictions": second}).json()
    assert (r["accepted"], r["duplicates"]) == (5, 6)
    items = {i["id"]: i for i in client.get(URL, params={"limit": 100}).json()["items"]}
    assert {k: v["features"] for k, v in items.items()} == {
        rec["id"]: rec["features"] for rec in first
    }
    with db.session(readonly=True) as session:
        seqs = sorted(session.scalars(select(Prediction.seq)).all())
        counted = session.scalar(select(func.sum(BlockCounts.rows)))
        counter = session.scalar(select(MonitoredModel.record_count))
    assert seqs == list(range(10)) and counted == 10 and counter == 10


# --------------------------------------------------------------------------- concurrency
def _prepared(db: Database, settings: Settings, records: list[dict[str, Any]]) -> PreparedBatch:
    """What the endpoint prepares for ``records`` before its write transaction."""
    with db.session(readonly=True) as session:
        model = catalog.active_model(session, "churn")
        assert model.reference_id is not None
        spec = get_spec(session, model.reference_id)
        rules = rule_config(session, model)
    now = utcnow()
    raw = json.dumps({"predictions": records}).encode()
    batch = decode_batch(raw, model, now=now, settings=settings)
    assert batch is not None
    prepared = prepare(db, model, batch, spec=spec, rules=rules, now=now)
    assert isinstance(prepared, PreparedBatch)
    return prepared


def _lock_waits(db: Database) -> list[tuple[str, str]]:
    """(wait_event, query) of the database's sessions waiting on a lock now."""
    with db.session(readonly=True) as session:
        rows = session.connection().exec_driver_sql(
            "SELECT wait_event, query FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return [(str(event), str(query)[:80]) for event, query in rows]


def _write_in_thread(
    db: Database, prepared: PreparedBatch, done: threading.Event, commit: threading.Event
) -> tuple[threading.Thread, list[Any]]:
    """Write ``prepared`` in a thread; ``done`` is set when the writes are made (not committed)."""
    out: list[Any] = []

    def run() -> None:
        try:
            with db.session() as session:
                out.append(write(session, prepared))
                done.set()
                assert commit.wait(60)
        except BaseException as exc:  # reported by the test
            out.append(exc)
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_two_ingest_transactions_of_one_model_overlap_on_postgres(
    client: TestClient, db: Database, settings: Settings
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite has one writer at a time by design")
    create_model_with_reference(client)  # confidence threshold 0.6, no audit sample
    one = _prepared(db, settings, predictions(300, seed=1, prefix="one", confidence=0.95))
    two = _prepared(db, settings, predictions(300, seed=2, prefix="two", confidence=0.95))
    commit = threading.Event()
    done_one, done_two = threading.Event(), threading.Event()
    t1, out1 = _write_in_thread(db, one, done_one, commit)
    assert done_one.wait(60), "the first transaction did not write"
    # the first transaction is open, its rows and block counts written: the second
    # writes all of its own meanwhile, waiting on nothing
    t2, out2 = _write_in_thread(db, two, done_two, commit)
    waited = not done_two.wait(60)
    waits = _lock_waits(db)
    commit.set()
    t1.join(60)
    t2.join(60)
    assert not waited, f"the second transaction waited: {waits}"
    for out in (out1, out2):
        stored, exceptions = out[0]
        assert len(stored.prediction_ids) == 300 and exceptions == 0
    with db.session(readonly=True) as session:
        seqs = sorted(session.scalars(select(Prediction.seq)).all())
        counted = session.scalar(select(func.sum(BlockCounts.rows)))
    assert seqs == list(range(600)) and counted == 600


def test_with_tickets_only_the_ticket_statements_queue_on_postgres(
    client: TestClient, db: Database, settings: Settings
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite has one writer at a time by design")
    create_model_with_reference(client)
    one = _prepared(db, settings, predictions(50, seed=1, prefix="one", confidence=0.3))
    two = _prepared(db, settings, predictions(50, seed=2, prefix="two", confidence=0.3))
    commit = threading.Event()
    done_one, done_two = threading.Event(), threading.Event()
    t1, out1 = _write_in_thread(db, one, done_one, commit)
    assert done_one.wait(60)
    t2, out2 = _write_in_thread(db, two, done_two, commit)
    # the second one queues behind the first's tickets, on the advisory lock only,
    # with its rows already written
    deadline = time.monotonic() + 60
    waits: list[tuple[str, str]] = []
    while time.monotonic() < deadline and not waits:
        waits = _lock_waits(db)
        time.sleep(0.05)
    assert [w for w, _ in waits] == ["advisory"], waits
    assert not done_two.is_set()
    commit.set()
    t1.join(60)
    t2.join(60)
    assert done_two.is_set()
    assert [len(o[0][0].prediction_ids) for o in (out1, out2)] == [50, 50]
    assert [o[0][1] for o in (out1, out2)] == [50, 50]  # every record under the threshold


def test_an_id_stored_by_another_replica_meanwhile_is_a_duplicate_on_postgres(
    client: TestClient, db: Database, settings: Settings
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only (SQLite: the next test)")
    create_model_with_reference(client)
    records = predictions(20, seed=4)
    prepared = _prepared(db, settings, records)  # ids checked and numbers reserved
    # another replica stores records 3 and 7 before this batch's COPY
    r = client.post(URL, json={"predictions": [records[3], records[7]]})
    assert r.json()["accepted"] == 2
    with db.session() as session:
        stored, _ = write(session, prepared)
    assert (len(stored.prediction_ids), stored.duplicates) == (18, 2)
    assert sorted(stored.new_positions.tolist()) == [i for i in range(20) if i not in (3, 7)]
    items = client.get(URL, params={"limit": 100}).json()["items"]
    assert sorted(i["id"] for i in items) == sorted(r["id"] for r in records)
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.sum(BlockCounts.rows))) == 20
        rows = dict(session.execute(select(Prediction.id, Prediction.client_id)).all())
    assert all(
        rows[pid] == records[i]["id"]
        for pid, i in zip(stored.prediction_ids, stored.new_positions.tolist(), strict=True)
    )


def test_an_id_stored_between_the_read_and_the_write_lock_on_sqlite(
    client: TestClient, db: Database, settings: Settings
) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only (PostgreSQL: the previous test)")
    create_model_with_reference(client)
    records = predictions(20, seed=4)
    prepared = _prepared(db, settings, records)  # ids checked before the write lock
    assert client.post(URL, json={"predictions": [records[5]]}).json()["accepted"] == 1
    with pytest.raises(Raced), db.session() as session:
        write(session, prepared)
    with db.session() as session:
        stored, _ = write(session, prepared, recheck=True)
    assert (len(stored.prediction_ids), stored.duplicates) == (19, 1)
    with db.session(readonly=True) as session:
        seqs = sorted(session.scalars(select(Prediction.seq)).all())
        counted = session.scalar(select(func.sum(BlockCounts.rows)))
        ids = dict(session.execute(select(Prediction.id, Prediction.client_id)).all())
    assert seqs == list(range(20)) and counted == 20
    assert all(
        ids[pid] == records[i]["id"]
        for pid, i in zip(stored.prediction_ids, stored.new_positions.tolist(), strict=True)
    )
