"""GET /v1/models/{name}/performance: every field, every status code, late labels, audits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.performance.fit_step import fit_pending
from app.settings import Settings
from storage.tables import Prediction
from tests.app.performance.helpers import (
    feedback,
    model_body,
    post,
    resolve_with_truth,
    setup_model,
    simulate,
    windows,
)
from tests.exceptions_queue.helpers import open_incident, pin_ingest_clock
from tests.factories import make_key

CLASSIFICATION = ["accuracy", "precision", "recall", "f1", "roc_auc", "ece"]


def _accuracy(records: list[dict[str, Any]], truth: list[str]) -> float:
    return float(np.mean([r["prediction"] == t for r, t in zip(records, truth, strict=True)]))


def test_every_field_of_a_window(client: TestClient) -> None:
    setup_model(client)
    records, truth = simulate(3000, seed=1)
    post(client, records)
    items = windows(client)
    assert [w["last_block"] for w in items] == [2, 1, 0]  # newest first, one per step
    w = items[0]
    assert set(w) >= {
        "window_start",
        "window_end",
        "rows",
        "model_version",
        "metrics",
        "reference",
        "degraded",
        "concept_shift_suspected",
        "incident_id",
    }
    assert w["rows"] == 1000 and w["model_version"] is None
    assert w["window_start"] == w["window_end"] == "2026-11-24T10:00:00Z"
    assert list(w["metrics"]) == CLASSIFICATION
    assert list(w["reference"]) == CLASSIFICATION
    assert w["reference"]["accuracy"] == pytest.approx(0.78, abs=0.04)
    for name in CLASSIFICATION:
        m = w["metrics"][name]
        assert m["realized"] is None and m["audited"] is None  # no labels yet
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        est = w["metrics"][name]["estimated"]
        assert set(est) == {"value", "ci_low", "ci_high", "n"}
        assert est["ci_low"] <= est["value"] <= est["ci_high"] and est["n"] == 1000
    assert w["metrics"]["ece"]["estimated"] is None  # ece is realized only
    for item, start in zip(items, (2000, 1000, 0), strict=True):
        truth_acc = _accuracy(records[start : start + 1000], truth[start : start + 1000])
        est = item["metrics"]["accuracy"]["estimated"]
        assert abs(est["value"] - truth_acc) < 0.05
    assert w["degraded"] is False and w["concept_shift_suspected"] is False
    assert w["incident_id"] is None
    assert w["judged_by"] == {
        "metric": "accuracy",
        "source": "estimated",
        "value": w["metrics"]["accuracy"]["estimated"]["value"],
        "bound": 0.75,
    }
    assert w["audited_labels"] == 0


def test_late_labels_change_a_windows_realized_value(client: TestClient) -> None:
    setup_model(client)
    records, truth = simulate(2000, seed=2)
    post(client, records)
    before = windows(client)
    assert all(w["metrics"]["accuracy"]["realized"] is None for w in before)
    feedback(client, records[:400], truth[:400])  # the first window only
    first, second = windows(client)[1], windows(client)[0]
    realized = first["metrics"]["accuracy"]["realized"]
    assert realized["n"] == 400 and realized["coverage"] == 0.4
    assert realized["value"] == pytest.approx(_accuracy(records[:400], truth[:400]))
    assert realized["ci_low"] < realized["value"] < realized["ci_high"]
    assert second["metrics"]["accuracy"]["realized"] is None
    assert first["metrics"]["ece"]["realized"]["value"] >= 0
    # ground truth sent again replaces the first: every label now says "churn"
    feedback(client, records[:400], ["churn"] * 400)
    again = windows(client)[1]["metrics"]["accuracy"]["realized"]
    assert again["n"] == 400
    assert again["value"] == pytest.approx(
        np.mean([r["prediction"] == "churn" for r in records[:400]])
    )
    assert again["value"] != realized["value"]


def _resolve_with_truth(client: TestClient, truth_of: dict[str, str]) -> int:
    return resolve_with_truth(client, make_key(client, "review", name="ana"), truth_of)


def test_audited_estimate_is_unbiased_when_the_budget_changes(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flagged records (low confidence) are worse than the rest; reviewers label every
    ticket: in the first window every flagged record and a 15% audit of the rest; in the
    second a label budget draws flagged records by value (probabilities < 1, varying by
    record) and a 5% audit keeps its own rate outside the budget. Without weights the
    labels' accuracy is far below the model's; weighted by inclusion probability it is
    not, in both windows."""
    # the budget is per hour of the server's clock: both batches arrive in the same hour,
    # late in it (so the second batch may spend the hour's budget)
    pin_ingest_clock(monkeypatch)
    setup_model(client, confidence_threshold=0.6, options={"audit_rate": 0.15})
    records, truth = simulate(1000, seed=3, prefix="a")
    post(client, records)
    truth_of = {r["id"]: t for r, t in zip(records, truth, strict=True)}
    _resolve_with_truth(client, truth_of)
    r = client.patch(
        "/v1/models/churn",
        json={"options": {"audit_rate": 0.05, "ticket_budget_per_hour": 60}},
    )
    assert r.status_code == 200, r.text
    more, more_truth = simulate(1000, seed=4, prefix="b")
    post(client, more)
    truth_of |= {r["id"]: t for r, t in zip(more, more_truth, strict=True)}
    _resolve_with_truth(client, truth_of)
    items = client.get("/v1/tickets", params={"limit": 1000}).json()["items"]
    second = [t for t in items if t["prediction_id"].startswith("b-")]
    flagged = {t["inclusion_probability"] for t in second if t["kind"] == "low_confidence"}
    assert min(flagged) < 0.5 and len(flagged) > 3  # drawn by value: probabilities vary
    # the audits: their own rate in each window, outside the budget
    assert {t["inclusion_probability"] for t in items if t["kind"] == "audit"} == {0.15, 0.05}
    for w, (recs, tr) in zip(windows(client), ((more, more_truth), (records, truth)), strict=True):
        audited = w["metrics"]["accuracy"]["audited"]
        true_accuracy = _accuracy(recs, tr)
        assert audited["ci_low"] <= true_accuracy <= audited["ci_high"], (audited, true_accuracy)
        assert w["audited_labels"] == audited["n"] > 60
        # the labels' plain accuracy is biased: flagged (hard) cases are over-represented
        labelled = [(r, t) for r, t in zip(recs, tr, strict=True) if _was_ticketed(client, r["id"])]
        naive = _accuracy([r for r, _ in labelled], [t for _, t in labelled])
        assert naive < true_accuracy - 0.05
    assert {"precision", "f1"} <= set(w["metrics"])
    assert w["metrics"]["f1"]["audited"] is None  # audited: accuracy, mae, rmse only


_ticketed: dict[int, set[str]] = {}


def _was_ticketed(client: TestClient, prediction_id: str) -> bool:
    key = id(client)
    if key not in _ticketed:
        items = client.get("/v1/tickets", params={"limit": 1000}).json()["items"]
        _ticketed[key] = {t["prediction_id"] for t in items}
    return prediction_id in _ticketed[key]


def test_model_version_filter_reads_one_versions_blocks(client: TestClient) -> None:
    setup_model(client)
    records, _ = simulate(1000, seed=5)
    for i, r in enumerate(records):
        r["model_version"] = "v1" if i % 4 else "v2"
    post(client, records)
    [all_versions] = windows(client)
    [v1] = windows(client, model_version="v1")
    [v2] = windows(client, model_version="v2")
    assert all_versions["rows"] == 1000 and all_versions["model_version"] is None
    assert (v1["rows"], v2["rows"]) == (750, 250)
    assert v1["model_version"] == "v1"
    assert v1["metrics"]["accuracy"]["estimated"]["n"] == 750
    assert windows(client, model_version="v3") == []


def test_pages_and_time_filters(client: TestClient) -> None:
    setup_model(client)
    records, _ = simulate(3000, seed=6)
    for i, r in enumerate(records):
        r["timestamp"] = f"2026-11-24T1{i // 1000}:30:00Z"
    post(client, records)
    r = client.get("/v1/models/churn/performance", params={"limit": 2})
    body = r.json()
    assert [w["last_block"] for w in body["items"]] == [2, 1] and body["next_cursor"]
    r = client.get(
        "/v1/models/churn/performance", params={"limit": 2, "cursor": body["next_cursor"]}
    )
    assert [w["last_block"] for w in r.json()["items"]] == [0]
    assert r.json()["next_cursor"] is None
    [w] = windows(client, start="2026-11-24T11:00:00Z", end="2026-11-24T12:00:00Z")
    assert w["last_block"] == 1
    assert w["window_start"] == w["window_end"] == "2026-11-24T11:30:00Z"
    assert windows(client, start="2026-11-25T00:00:00Z") == []


def test_without_a_calibrated_reference_the_estimate_is_null(client: TestClient) -> None:
    r = client.post("/v1/models", json=model_body())
    assert r.status_code == 201
    records, truth = simulate(300, seed=7)
    # features and predictions, no labels: no reference metrics, nothing to calibrate
    r = client.post(
        "/v1/models/churn/reference",
        json={
            "records": [{"features": x["features"], "prediction": x["prediction"]} for x in records]
        },
    )
    assert r.status_code == 201, r.text
    post(client, records)
    feedback(client, records[:100], truth[:100])
    [w] = windows(client)
    assert w["metrics"]["accuracy"]["estimated"] is None
    assert w["reference"]["accuracy"] is None
    assert w["metrics"]["accuracy"]["realized"]["n"] == 100
    assert w["judged_by"]["source"] == "realized"


def test_concept_shift_is_suspected_when_labels_and_estimate_disagree(client: TestClient) -> None:
    setup_model(client)
    records, truth = simulate(1000, seed=8, concept_shift=2.5)
    post(client, records)
    feedback(client, records[:600], truth[:600])
    [w] = windows(client)
    realized = w["metrics"]["accuracy"]["realized"]
    estimated = w["metrics"]["accuracy"]["estimated"]
    assert realized["ci_high"] < estimated["ci_low"]
    assert w["concept_shift_suspected"] is True
    assert w["judged_by"]["source"] == "realized"
    assert w["degraded"] is (realized["ci_high"] < 0.75)


def test_regression_windows(client: TestClient, db: Database, settings: Settings) -> None:
    rng = np.random.default_rng(0)

    def make(n: int, prefix: str) -> tuple[list[dict[str, Any]], list[float]]:
        x = rng.normal(0, 1, n)
        y = 3 * x + rng.normal(0, 1, n) * (0.5 + np.abs(x))
        recs = [
            {"id": f"{prefix}{i}", "features": {"x": float(x[i])}, "prediction": float(3 * x[i])}
            for i in range(n)
        ]
        return recs, [float(v) for v in y]

    body = {
        "name": "price",
        "task": "regression",
        "features": [{"name": "x", "type": "numerical"}],
        "window": {"kind": "count", "size": 400, "step": 400},
        "performance": {"metric": "rmse", "max_drop": 0.5},
    }
    assert client.post("/v1/models", json=body).status_code == 201
    ref, y = make(150, "r")
    r = client.post(
        "/v1/models/price/reference",
        json={
            "records": [
                {"features": a["features"], "prediction": a["prediction"], "label": b}
                for a, b in zip(ref, y, strict=True)
            ]
        },
    )
    assert r.status_code == 201, r.text
    # the loss models are fitted by the background step, not by the upload
    assert r.json()["performance"]["status"] == "fitting"
    assert r.json()["performance"]["label_free_estimate"] is False
    recs, y = make(400, "p")
    assert (
        client.post("/v1/models/price/predictions", json={"predictions": recs}).status_code == 202
    )
    [w] = client.get("/v1/models/price/performance").json()["items"]
    assert w["metrics"]["mae"]["estimated"] is None  # not fitted yet
    assert fit_pending(db, settings) == 1
    assert fit_pending(db, settings) == 0
    perf = client.get("/v1/models/price/reference").json()["performance"]
    assert perf["status"] == "ready" and perf["label_free_estimate"] is True, perf
    assert perf["note"] is None
    r = client.post(
        "/v1/models/price/feedback",
        json={"feedback": [{"id": a["id"], "label": b} for a, b in zip(recs, y, strict=True)]},
    )
    assert r.status_code == 202
    [w] = client.get("/v1/models/price/performance").json()["items"]
    assert list(w["metrics"]) == ["mae", "rmse"]
    errors = np.array(y) - np.array([a["prediction"] for a in recs])
    assert w["metrics"]["mae"]["realized"]["value"] == pytest.approx(np.mean(np.abs(errors)))
    assert w["metrics"]["rmse"]["realized"]["value"] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert w["metrics"]["mae"]["estimated"]["n"] == 400
    assert w["reference"]["rmse"] is not None
    assert w["judged_by"]["bound"] == pytest.approx(w["reference"]["rmse"] + 0.5)


def test_status_codes(client: TestClient) -> None:
    setup_model(client)
    url = "/v1/models/churn/performance"
    assert client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    ingest = make_key(client, "ingest", name="model")
    assert client.get(url, headers=ingest).status_code == 403
    reviewer = make_key(client, "review", name="ana")
    assert client.get(url, headers=reviewer).status_code == 200
    for path in ("/v1/models/nope/performance", "/v1/models/nope/performance/incidents"):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    for params, loc in (
        ({"start": "2026-11-24T10:00:00"}, ["query", "start"]),
        ({"start": "2026-11-24T10:00:00Z", "end": "2026-11-24T09:00:00Z"}, ["query", "end"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 1001}, ["query", "limit"]),
        ({"cursor": "garbage!"}, ["query", "cursor"]),
        ({"model_version": "v" * 101}, ["query", "model_version"]),
    ):
        r = client.get(url, params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["code"] == "validation_error"
        assert r.json()["error"]["details"][0]["loc"] == loc
    r = client.get(f"{url}/incidents", params={"status": "maybe"})
    assert r.status_code == 422
    assert client.get(f"{url}/incidents").json() == {"items": [], "next_cursor": None}
    assert client.get(f"{url}/incidents", headers=ingest).status_code == 403


def test_compaction_keeps_every_window_and_leaves_one_part_per_kind(
    client: TestClient, db: Any, settings: Any
) -> None:
    from sqlalchemy import func, select

    from app.performance.incidents import run_due
    from app.performance.tables import PerformancePart

    setup_model(client)
    records, truth = simulate(3000, seed=12)
    for i in range(0, 3000, 250):  # small batches: several parts per block
        post(client, records[i : i + 250])
    feedback(client, records[:1500], truth[:1500])
    feedback(client, records[:300], ["churn"] * 300)  # a change: a negative part too
    before = windows(client)
    with db.session(readonly=True) as s:
        parts_before = s.scalar(select(func.count()).select_from(PerformancePart))
    run_due(db, settings)
    after = windows(client)
    with db.session(readonly=True) as s:
        per_group = s.execute(
            select(func.count())
            .select_from(PerformancePart)
            .where(PerformancePart.block < 2)
            .group_by(PerformancePart.block, PerformancePart.kind)
        ).scalars()
        assert set(per_group) == {1}  # finished blocks: one part per kind
        parts_after = s.scalar(select(func.count()).select_from(PerformancePart))
    assert parts_after < parts_before
    for a, b in zip(before, after, strict=True):
        for name in ("accuracy", "f1"):
            for source in ("realized", "estimated"):
                x, y = a["metrics"][name][source], b["metrics"][name][source]
                assert (x is None) == (y is None)
                if x is not None:
                    assert y["value"] == pytest.approx(x["value"])
                    assert y["n"] == x["n"]
        assert a["rows"] == b["rows"] and a["window_start"] == b["window_start"]


def test_drift_sample_labels_are_counted_apart_from_the_audited_estimate(
    client: TestClient, db: Database
) -> None:
    """Labels on a drift ticket's sample are reported per window (``drift_sample_labels``)
    and never enter the audited estimate; a reopened ticket takes them out again."""
    setup_model(client, options={"audit_rate": 0.0})
    records, _ = simulate(1000, seed=7)
    post(client, records)
    before = windows(client)[0]
    assert before["drift_sample_labels"] == 0
    sample = [r for r in records[:40] if r["confidence"] >= 0.6][:3]  # not flagged: no ticket
    assert len(sample) == 3
    ids = {
        p["id"]: p["prediction"]
        for p in client.get("/v1/models/churn/predictions", params={"limit": 1000}).json()["items"]
    }
    with db.session(readonly=True) as s:
        pids = list(
            s.scalars(
                select(Prediction.id)
                .where(Prediction.client_id.in_([r["id"] for r in sample]))
                .order_by(Prediction.id)
            )
        )
    open_incident(db, sample=tuple(pids))
    r = client.post("/v1/tickets/claim", json={"kind": "drift"})
    assert r.status_code == 200, r.text
    ticket = r.json()
    # the reviewer says the model was wrong on all three
    wrong = {"churn": "stay", "stay": "churn"}
    labels = [{"prediction_id": rec["id"], "label": wrong[ids[rec["id"]]]} for rec in sample]
    r = client.post(
        f"/v1/tickets/{ticket['id']}/resolve",
        json={"labels": labels, "lease_token": ticket["lease_token"]},
    )
    assert r.status_code == 200, r.text
    after = windows(client)[0]
    assert after["drift_sample_labels"] == 3
    assert after["audited_labels"] == before["audited_labels"]
    assert after["metrics"]["accuracy"]["audited"] == before["metrics"]["accuracy"]["audited"]
    r = client.post(f"/v1/tickets/{ticket['id']}/reopen")
    assert r.status_code == 200, r.text
    assert windows(client)[0]["drift_sample_labels"] == 0
