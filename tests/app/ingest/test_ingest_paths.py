"""The column-wise decoder against the general path, and the write paths of both backends.

* Whatever the fast decoder (msgspec) accepts, the general path (JSON, pydantic,
  per-column checks) accepts with the same values; whatever it cannot decide, it
  leaves to the general path.
* What COPY's text format must escape (tabs, newlines, backslashes) is stored and
  read back as sent; duplicates mixed with new records keep each row's own values.
* On PostgreSQL two ingest transactions of one model overlap: neither waits on a
  lock of the other for its rows, block counts or tickets; only under a label
  budget do the tickets' statements queue (on the model's advisory lock). A batch never waits for the merge of its data-quality
  groups: while the model's lock is held it defers them, and the next holder (the
  model's next batch with breaks, or the background step) folds them. A replica
  storing one of the ids between the reservation and COPY makes it a duplicate,
  not an error.
* On SQLite, an id stored after the batch was prepared (a client's retry, or
  another writer) is found by the insert and checked again under the lock.
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
from app.ingest.flows import (
    PreparedBatch,
    fold_deferred_quality,
    prepare,
    rule_config,
    write,
)
from app.ingest.parse import ValidatedBatch, decode_batch, parse_json, parse_records, validate_batch
from app.ingest.sketches import get_spec
from app.ingest.store import Raced, StoredBatch
from app.settings import Settings
from exceptions_queue.rules import EXAMPLES_PER_GROUP
from exceptions_queue.service import MAX_GROUP_EXAMPLES, hour_of
from exceptions_queue.tables import QualityDeferred, Ticket, TicketVolume
from storage.base import utcnow
from storage.sql import LockKey, advisory_lock
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


@pytest.mark.parametrize("budget", [None, 1000])
def test_with_tickets_only_a_label_budget_queues_on_postgres(
    client: TestClient, db: Database, settings: Settings, budget: int | None
) -> None:
    """Two batches of one model that both open tickets: without a budget neither waits
    on the other; with one, the second queues on the model's advisory lock only."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite has one writer at a time by design")
    options = {} if budget is None else {"options": {"ticket_budget_per_hour": budget}}
    create_model_with_reference(client, **options)
    one = _prepared(db, settings, predictions(50, seed=1, prefix="one", confidence=0.3))
    two = _prepared(db, settings, predictions(50, seed=2, prefix="two", confidence=0.3))
    commit = threading.Event()
    done_one, done_two = threading.Event(), threading.Event()
    t1, out1 = _write_in_thread(db, one, done_one, commit)
    assert done_one.wait(60)
    t2, out2 = _write_in_thread(db, two, done_two, commit)
    if budget is None:
        # low-confidence tickets take no lock (their insert is idempotent) and the
        # hour's ticket volume is a partial row of each transaction's own: the second
        # writes everything while the first is still open
        waited = not done_two.wait(60)
        assert not waited, f"the second transaction waited: {_lock_waits(db)}"
    else:
        # the budget spent so far is read, then spent: on the model's advisory lock
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
    opened = [o[0][1] for o in (out1, out2)]
    if budget is None:
        assert opened == [50, 50]  # every record under the threshold
    else:
        assert 0 < opened[0] <= 50 and 0 <= opened[1] <= 50  # drawn by the budget
    # the hour's counters add up, whatever rows they were written in
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.sum(TicketVolume.opened))) == sum(opened)


def _broken(n: int, *, seed: int, prefix: str) -> list[dict[str, Any]]:
    """``n`` confident records (no low-confidence ticket), each with an unseen ``plan``,
    the first also with an ``age`` far out of range."""
    records = predictions(n, seed=seed, prefix=prefix, confidence=0.9)
    for r in records:
        r["features"]["plan"] = "platinum"
    records[0]["features"]["age"] = 10_000.0
    return records


def _quality(db: Database) -> tuple[list[Ticket], int]:
    """The data-quality tickets and the number of deferred rows."""
    with db.session(readonly=True) as session:
        dq = session.scalars(select(Ticket).where(Ticket.kind == "data_quality")).all()
        deferred = session.scalar(select(func.count()).select_from(QualityDeferred)) or 0
    return list(dq), int(deferred)


def _write_while_the_tickets_lock_is_held(
    db: Database, prepared: PreparedBatch, model_id: int, settings: Settings
) -> tuple[StoredBatch, int]:
    """Write and commit ``prepared`` while another transaction holds the model's
    ``TICKETS`` lock; fails (instead of waiting for the holder) if the write waits."""
    commit, done = threading.Event(), threading.Event()
    commit.set()
    with db.session() as holder:
        advisory_lock(holder, LockKey.TICKETS, item=model_id, wait=True)
        thread, out = _write_in_thread(db, prepared, done, commit)
        thread.join(30)
        waits = _lock_waits(db)
        assert not thread.is_alive(), f"the batch waited: {waits}"
        assert fold_deferred_quality(db, settings) == 0  # the lock is held: skipped
    result = out[0]
    assert isinstance(result, tuple), result
    return result


def test_a_batch_does_not_wait_for_its_data_quality_merge_on_postgres(
    client: TestClient, db: Database, settings: Settings
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: on SQLite the lock is never held by another writer")
    create_model_with_reference(client)
    model = _model(db)
    prepared = _prepared(db, settings, _broken(8, seed=5, prefix="a"))
    stored, opened = _write_while_the_tickets_lock_is_held(db, prepared, model.id, settings)
    # committed with its rows, its groups deferred: no ticket yet
    assert len(stored.prediction_ids) == 8 and opened == 0
    assert _quality(db) == ([], 1)
    # the holder has committed: the background step folds them
    assert fold_deferred_quality(db, settings) == 1
    dq, deferred = _quality(db)
    assert deferred == 0
    assert {t.details["feature"]: t.details["counts"] for t in dq} == {
        "plan": {"unseen_category": 8},
        "age": {"out_of_range": 1},
    }
    hour = hour_of(prepared.now).strftime("%Y-%m-%dT%H")
    assert sorted(t.group_key for t in dq) == [f"dq:age:{hour}", f"dq:plan:{hour}"]
    plan = next(t for t in dq if t.details["feature"] == "plan")
    assert plan.count == 8 and plan.prediction_ids == stored.prediction_ids[:EXAMPLES_PER_GROUP]
    assert fold_deferred_quality(db, settings) == 0  # nothing left


def test_the_next_batch_that_gets_the_lock_folds_the_deferred_groups_on_postgres(
    client: TestClient, db: Database, settings: Settings
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: on SQLite the lock is never held by another writer")
    create_model_with_reference(client)
    model = _model(db)
    deferred = [
        _prepared(db, settings, _broken(n, seed=seed, prefix=prefix))
        for n, seed, prefix in ((3, 5, "a"), (4, 6, "b"))
    ]
    for prepared in deferred:
        _write_while_the_tickets_lock_is_held(db, prepared, model.id, settings)
    assert _quality(db) == ([], 2)
    last = _prepared(db, settings, _broken(7, seed=7, prefix="c"))
    if len({hour_of(p.now) for p in [*deferred, last]}) > 1:
        pytest.skip("the batches straddle an hour: their groups are two tickets")
    with db.session() as session:
        _, opened = write(session, last)
    assert opened == 2  # one plan and one age ticket, for the three batches
    dq, left = _quality(db)
    assert left == 0
    [plan] = [t for t in dq if t.details["feature"] == "plan"]
    [age] = [t for t in dq if t.details["feature"] == "age"]
    assert plan.details["counts"] == {"unseen_category": 14} and plan.count == 14
    assert age.details["counts"] == {"out_of_range": 3} and age.count == 3
    # the deferred batches' examples first, then the last one's, up to the cap
    sources = [e["client_id"].split("-")[0] for e in plan.details["examples"]]
    assert sources == ["a"] * 3 + ["b"] * 4 + ["c"] * (MAX_GROUP_EXAMPLES - 7)


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


def test_an_id_stored_after_the_batch_was_prepared_is_checked_under_the_lock_on_sqlite(
    client: TestClient, db: Database, settings: Settings
) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only (PostgreSQL: the previous test)")
    create_model_with_reference(client)
    records = predictions(20, seed=4)
    prepared = _prepared(db, settings, records)  # no id is read before the write lock
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
