"""The drift engine in the service: blocks, scheduled evaluations, incidents, API."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import Database
from app.drift import service
from app.drift.tables import DriftCalibration, DriftEvaluation
from app.ingest.sketches import get_spec
from app.reference.service import prediction_columns
from app.settings import Settings
from storage.tables import BlockCounts, MonitoredModel, Prediction
from tests.factories import (
    create_model,
    create_model_with_reference,
    make_key,
    predictions,
    reference_records,
)


def post(client: TestClient, records: list[dict[str, Any]], model: str = "churn") -> dict[str, Any]:
    for i in range(0, len(records), 500):
        r = client.post(
            f"/v1/models/{model}/predictions", json={"predictions": records[i : i + 500]}
        )
        assert r.status_code == 202, r.text
    return r.json()


def run_evaluator(db: Database, settings: Settings) -> int:
    return service.run_due_evaluations(db, settings)


def evaluations(client: TestClient, model: str = "churn") -> list[dict[str, Any]]:
    r = client.get(f"/v1/models/{model}/drift", params={"limit": 1000})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_window_counts_equal_counting_the_raw_rows(client: TestClient, db: Database) -> None:
    create_model_with_reference(client)
    post(client, predictions(1200, seed=3))
    with db.session(readonly=True) as s:
        model = s.scalars(select(MonitoredModel)).one()
        assert model.reference_id is not None
        spec = get_spec(s, model.reference_id)
        rows = s.scalars(select(Prediction).where(Prediction.seq < 1000)).all()
        direct = spec.count(prediction_columns(model, rows).values)
        summed = service.sum_blocks(
            s, model=model, reference_id=model.reference_id, spec=spec, blocks=range(0, 2)
        )
    assert summed.rows == 1000
    np.testing.assert_array_equal(summed.counts, direct)


def test_concurrent_writers_never_lose_counts(client: TestClient, db: Database) -> None:
    create_model_with_reference(client)
    errors: list[str] = []

    def writer(seed: int) -> None:
        for batch in range(3):
            r = client.post(
                "/v1/models/churn/predictions",
                json={"predictions": predictions(100, seed=seed * 10 + batch, prefix=f"w{seed}")},
            )
            if r.status_code != 202:
                errors.append(r.text)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.session(readonly=True) as s:
        stored = s.scalar(select(func.count()).select_from(Prediction))
        counted = s.scalar(select(func.sum(BlockCounts.rows)))
        seqs = sorted(s.scalars(select(Prediction.seq)).all())
    assert stored == counted == 1200
    assert seqs == list(range(1200))  # sequence numbers are dense and unique


def test_scheduled_evaluations_open_and_close_an_incident(
    client: TestClient, db: Database, settings: Settings
) -> None:
    create_model_with_reference(client)
    post(client, predictions(1000, seed=11))
    # a fresh schedule starts at the latest finished step (no backfill of history)
    assert run_evaluator(db, settings) == 1
    assert run_evaluator(db, settings) == 0  # nothing new: nothing runs twice
    clean = evaluations(client)
    assert [e["status"] for e in clean] == ["ok"]
    assert clean[0]["rows"] == 1000
    assert clean[0]["blocks"] == [0, 1]
    assert clean[0]["features"][0].keys() >= {
        "name",
        "detector",
        "statistic",
        "p_value",
        "effect",
        "threshold",
        "drifted",
    }

    post(client, predictions(1000, seed=12, prefix="shift", age_shift=15.0))
    assert run_evaluator(db, settings) == 2  # every finished step is evaluated, in order
    drifted = evaluations(client)[:2]
    assert all(e["drifted"] for e in drifted)
    assert any(f["name"] == "age" and f["drifted"] for f in drifted[0]["features"])
    incidents = client.get("/v1/models/churn/drift/incidents").json()["items"]
    assert len(incidents) == 1 and incidents[0]["status"] == "open"
    assert "age" in incidents[0]["drifted_features"]
    assert drifted[0]["incident_id"] == incidents[0]["id"]

    post(client, predictions(2500, seed=13, prefix="back"))
    run_evaluator(db, settings)
    incident = client.get("/v1/models/churn/drift/incidents").json()["items"][0]
    assert incident["status"] == "closed"
    assert incident["closed_at"] is not None


def test_evaluate_now_includes_the_step_in_progress(client: TestClient) -> None:
    create_model_with_reference(client)
    post(client, predictions(700, seed=5))
    r = client.post("/v1/models/churn/drift/evaluate")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rows"] == 700
    assert body["trigger"] == "manual"
    assert body["prediction"]["name"] == "prediction"
    assert body["status"] == "ok"


def test_small_window_is_insufficient_data_not_drift(client: TestClient) -> None:
    create_model_with_reference(client)
    post(client, predictions(50, seed=5, age_shift=30))
    body = client.post("/v1/models/churn/drift/evaluate").json()
    assert body["status"] == "insufficient_data"
    assert body["drifted"] is False


def test_evaluate_without_reference_is_a_conflict(client: TestClient) -> None:
    create_model(client)
    r = client.post("/v1/models/churn/drift/evaluate")
    assert r.status_code == 409
    assert "reference" in r.json()["error"]["message"]


def test_new_reference_recounts_the_live_window(client: TestClient) -> None:
    create_model_with_reference(client)
    post(client, predictions(800, seed=21))
    records = reference_records(600, seed=99)
    r = client.post("/v1/models/churn/reference", json={"records": records})
    assert r.status_code == 201
    body = client.post("/v1/models/churn/drift/evaluate").json()
    assert body["rows"] == 800
    assert body["reference_id"] == r.json()["id"]


def test_time_windows(client: TestClient, db: Database, settings: Settings) -> None:
    create_model_with_reference(client, window={"kind": "time", "size": "1h", "step": "10m"})
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    records = predictions(600, seed=8)
    for i, rec in enumerate(records):
        rec["timestamp"] = (now - dt.timedelta(minutes=i % 50)).isoformat()
    post(client, records)
    body = client.post("/v1/models/churn/drift/evaluate").json()
    assert body["rows"] == 600
    assert client.get("/v1/models/churn").json()["window"] == {
        "kind": "time",
        "size": "1h",
        "step": "10m",
    }


def test_confidence_collapse_triggers_an_online_evaluation(
    client: TestClient, db: Database, settings: Settings
) -> None:
    create_model_with_reference(client, window={"kind": "count", "size": 20000, "step": 10000})
    for k in range(15):
        post(client, predictions(40, seed=100 + k, prefix=f"a{k}", confidence=0.9))
    run_evaluator(db, settings)
    for k in range(6):
        post(client, predictions(40, seed=200 + k, prefix=f"b{k}", confidence=0.5))
    run_evaluator(db, settings)
    triggered = [e for e in evaluations(client) if e["trigger"] == "confidence_change"]
    assert len(triggered) == 1
    assert triggered[0]["note"]["detector"] == "page_hinkley"


def test_report_is_standalone_html(client: TestClient, db: Database, settings: Settings) -> None:
    create_model_with_reference(client)
    post(client, predictions(600, seed=31, age_shift=10))
    evaluation = client.post("/v1/models/churn/drift/evaluate").json()
    r = client.get("/v1/models/churn/drift/report", params={"evaluation": evaluation["id"]})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower() and "age" in r.text
    assert (
        client.get("/v1/models/churn/drift/report", params={"evaluation": 9999}).status_code == 404
    )


def test_a_cached_report_is_not_served_under_another_models_name(client: TestClient) -> None:
    create_model_with_reference(client)
    create_model_with_reference(client, name="other")
    post(client, predictions(600, seed=32, age_shift=10))
    evaluation = client.post("/v1/models/churn/drift/evaluate").json()
    params = {"evaluation": evaluation["id"]}
    # the first read builds and caches the report; the second, under a model the
    # evaluation does not belong to, must still be refused
    assert client.get("/v1/models/churn/drift/report", params=params).status_code == 200
    r = client.get("/v1/models/other/drift/report", params=params)
    assert r.status_code == 404, r.text
    assert f"no evaluation {evaluation['id']} for model 'other'" in r.json()["error"]["message"]


def test_drift_routes_need_the_right_scope(client: TestClient) -> None:
    create_model_with_reference(client)
    ingest = make_key(client, "ingest")
    review = make_key(client, "review")
    assert client.get("/v1/models/churn/drift", headers=ingest).status_code == 403
    assert client.get("/v1/models/churn/drift", headers=review).status_code == 200
    assert client.post("/v1/models/churn/drift/evaluate", headers=review).status_code == 403
    assert client.get("/v1/models/nope/drift").status_code == 404
    with_cursor = client.get("/v1/models/churn/drift", params={"cursor": "garbage"})
    assert with_cursor.status_code == 422


def test_evaluations_are_stored_once_per_step(
    db: Database, client: TestClient, settings: Settings
) -> None:
    create_model_with_reference(client)
    post(client, predictions(500, seed=41))
    run_evaluator(db, settings)
    post(client, predictions(1000, seed=42))
    run_evaluator(db, settings)
    run_evaluator(db, settings)
    with db.session(readonly=True) as s:
        blocks = s.scalars(select(DriftEvaluation.scheduled_block)).all()
    assert sorted(blocks) == [0, 1, 2]


def test_metrics_show_incidents_and_evaluations(
    client: TestClient, db: Database, settings: Settings
) -> None:
    create_model_with_reference(client)
    post(client, predictions(1000, seed=61))
    run_evaluator(db, settings)
    post(client, predictions(1000, seed=62, prefix="shift", age_shift=15.0))
    run_evaluator(db, settings)
    text = client.get("/metrics").text
    assert 'driftdesk_drift_incidents_open{model="churn"} 1' in text
    assert 'driftdesk_drift_evaluations{model="churn",status="drift"} 2' in text
    assert 'driftdesk_drift_last_evaluation_age_seconds{model="churn"}' in text


def test_due_windows_are_judged_before_the_write_transaction(
    client: TestClient, db: Database, settings: Settings, monkeypatch: Any
) -> None:
    # the evaluator judges in a read-only session; its write transaction only stores
    create_model_with_reference(client)
    post(client, predictions(1000, seed=51))
    post(client, predictions(1000, seed=52, prefix="shift", age_shift=15.0))
    judged: list[tuple[int, bool]] = []
    judge = service.judge_window

    def spy(session: Any, **kwargs: Any) -> Any:
        readonly = session.get_bind().get_execution_options().get("driftdesk_readonly", False)
        judged.append((kwargs["last_block"], readonly))
        return judge(session, **kwargs)

    monkeypatch.setattr(service, "judge_window", spy)
    assert run_evaluator(db, settings) == 1
    assert judged, "the evaluator never judged a window through service.judge_window"
    assert [block for block, readonly in judged if not readonly] == []
    with db.session(readonly=True) as s:
        stored = s.scalars(select(DriftCalibration.window_rows)).all()
    assert stored  # the calibration computed while judging was stored with the evaluation


def judge(db: Database, settings: Settings, now: dt.datetime) -> list[service.Judgement]:
    """What the evaluator judges before its write transaction (the one model)."""
    with db.session(readonly=True) as s:
        model = s.scalars(select(MonitoredModel)).one()
        return service.judge_due(s, model=model, settings=settings, now=now)


def store(
    db: Database, settings: Settings, now: dt.datetime, judged: list[service.Judgement]
) -> int:
    """The evaluator's write transaction, given those judgements."""
    with db.session() as s:
        model = s.scalars(select(MonitoredModel)).one()
        return service.evaluate_model_step(
            s, model=model, settings=settings, now=now, judged=judged
        )


def test_judgements_of_a_model_changed_meanwhile_are_judged_again(
    client: TestClient, db: Database, settings: Settings
) -> None:
    create_model_with_reference(client)
    post(client, predictions(1000, seed=53))
    now = dt.datetime.now(dt.UTC)
    judged = judge(db, settings, now)
    assert [j.block for j in judged] == [1]
    r = client.patch("/v1/models/churn", json={"drift": {"min_rows": 5000}})
    assert r.status_code == 200, r.text
    ran = store(db, settings, now, judged)
    assert ran == 1
    # judged under the new settings: 1,000 rows are now too few
    assert [e["status"] for e in evaluations(client)] == ["insufficient_data"]


def test_a_fresh_schedule_starts_where_it_was_judged_not_where_the_data_got_to(
    client: TestClient, db: Database, settings: Settings
) -> None:
    # blocks that finish while the first windows are judged are evaluated after them
    create_model_with_reference(client)
    post(client, predictions(1000, seed=54))
    now = dt.datetime.now(dt.UTC)
    judged = judge(db, settings, now)
    [first] = [j.block for j in judged]
    post(client, predictions(1000, seed=55, prefix="later"))
    ran = store(db, settings, now, judged)
    with db.session(readonly=True) as s:
        blocks = sorted(s.scalars(select(DriftEvaluation.scheduled_block)).all())
    assert blocks[0] == first and ran == len(blocks) > 1
    assert blocks == list(range(first, first + len(blocks)))
