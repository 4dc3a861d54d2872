"""The label budget spent by value in the real service, and the audited estimate under it.

Through the API on both databases: a budget draws flagged records with probabilities
proportional to their value, the probabilities of every considered record add up to
about the budget over an hour, and over repeated draws the audited accuracy (stratified
Horvitz–Thompson from reviewers' labels) is unbiased and its interval covers.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import Database
from app.ingest import endpoints as ingest_endpoints
from app.workforce import endpoints as workforce_endpoints
from exceptions_queue.tables import SampleDraw, TicketVolume
from monitors.sampling import horvitz_thompson
from storage.base import utcnow
from storage.tables import Prediction
from tests.app.performance.helpers import (
    post,
    resolve_with_truth,
    setup_model,
    simulate,
    windows,
)
from tests.factories import make_key

BUDGET = 40


def _at(monkeypatch: pytest.MonkeyPatch, when: dt.datetime) -> None:
    monkeypatch.setattr(ingest_endpoints, "utcnow", lambda: when)


def _record(rid: str, x: float, plan: str) -> dict[str, Any]:
    return {
        "id": rid,
        "timestamp": "2026-11-24T10:00:00Z",
        "features": {"x": x, "plan": plan},
        "prediction": "churn",
        "confidence": 0.55,  # flagged; uncertainty 0.9
    }


def _odd_records() -> list[dict[str, Any]]:
    """Flagged records a value sampler should tell apart: one far outside the reference's
    range (novel), four more outside it in one bin (one group), and ten copies of one
    ordinary record (one group)."""
    return (
        [_record("novel", 12.0, "pro")]
        + [_record(f"far-{i}", 9.0 + i, "free") for i in range(4)]
        + [_record(f"copy-{i}", 0.05, "free") for i in range(10)]
    )


def test_the_budget_is_spent_by_value_over_an_hour(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_model(client, window={"kind": "count", "size": 5000, "step": 5000})
    r = client.patch("/v1/models/churn", json={"options": {"ticket_budget_per_hour": BUDGET}})
    assert r.status_code == 200, r.text
    hour = (utcnow() - dt.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    flagged = 0
    for k, minute in enumerate((5, 15, 25, 35, 45, 55)):
        _at(monkeypatch, hour + dt.timedelta(minutes=minute))
        records, _ = simulate(300, seed=20 + k, prefix=f"h{k}")
        if k == 0:
            records += _odd_records()
        post(client, records)
        flagged += sum(r["confidence"] < 0.6 for r in records)
    with db.session(readonly=True) as s:
        draws = s.scalars(select(SampleDraw)).all()
        expected = s.scalar(select(func.sum(TicketVolume.expected)))
        client_id = dict(s.execute(select(Prediction.id, Prediction.client_id)).all())
    # every flagged record was considered and has its probability, drawn or not
    assert len(draws) == flagged
    total = sum(d.inclusion_probability for d in draws)
    assert total == pytest.approx(expected)
    # spent in expectation: all of it but what the last batch left for records after it
    assert 0.8 * BUDGET <= total <= BUDGET + 1e-9, total
    # within a batch, probabilities are proportional to value (until capped at 1)
    by_batch: dict[dt.datetime, list[SampleDraw]] = defaultdict(list)
    for d in draws:
        by_batch[d.at].append(d)
    assert len(by_batch) == 6
    for batch in by_batch.values():
        ratios = [d.inclusion_probability / d.value for d in batch if d.inclusion_probability < 1]
        assert max(ratios) == pytest.approx(min(ratios), rel=1e-9)
    # uncertainty 0.9 at confidence 0.55; far outside the range adds novelty 1; ten
    # copies in one group share one record's value
    ids = {
        t["prediction_id"]: t
        for t in client.get("/v1/tickets", params={"limit": 1000, "kind": "low_confidence"}).json()[
            "items"
        ]
    }
    value = {client_id[d.prediction_id]: d.value for d in draws}
    assert value["novel"] == pytest.approx(0.05 + 0.9 + 1.0) == max(value.values())
    assert all(value[f"far-{i}"] <= 1.95 / 4 + 1e-9 for i in range(4))
    assert all(value[f"copy-{i}"] <= 0.95 / 10 + 1e-9 for i in range(10))
    # the drawn ones are the tickets, carrying the same probability
    sampled = [d for d in draws if d.sampled]
    assert len(sampled) == len(ids) and 0.6 * BUDGET < len(sampled) < 1.4 * BUDGET
    assert all(0 < t["inclusion_probability"] <= 1 for t in ids.values())
    assert sum(t["inclusion_probability"] < 1 for t in ids.values()) > len(ids) / 2
    # GET /v1/workforce shows the hour's budget as it stands (read at minute 57)
    monkeypatch.setattr(workforce_endpoints, "utcnow", lambda: hour + dt.timedelta(minutes=57))
    [shown] = client.get("/v1/workforce").json()["label_budgets"]
    assert (shown["model"], shown["period"], shown["labels"]) == ("churn", "hour", BUDGET)
    assert shown["spent"] == pytest.approx(total)
    assert (shown["considered"], shown["drawn"]) == (flagged, len(sampled))
    assert shown["expected_later"] > 0 and shown["audit_raised"] is False


def _all_tickets(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = {"limit": 500, **params} if cursor is None else {**params, "cursor": cursor}
        r = client.get("/v1/tickets", params=page)
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out


def test_the_audited_accuracy_is_unbiased_under_the_value_sampler(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same 200 records, drawn again in each of 24 hours (a budget of 10 labels an
    hour for ~32 flagged records, a 6% audit of the rest outside it), every ticket
    labelled: the windows' audited accuracies average to the records' true accuracy
    and their 95% intervals cover it."""
    reps, size = 24, 200
    setup_model(
        client,
        window={"kind": "count", "size": size, "step": size},
        options={"ticket_budget_per_hour": 10, "audit_rate": 0.06},
    )
    ana = make_key(client, "review", name="ana")
    records, truth = simulate(size, seed=7, prefix="pop")
    true_accuracy = float(
        np.mean([r["prediction"] == t for r, t in zip(records, truth, strict=True)])
    )
    start = (utcnow() - dt.timedelta(hours=reps + 1)).replace(minute=59, second=0, microsecond=0)
    truth_of: dict[str, str] = {}
    for k in range(reps):
        _at(monkeypatch, start + dt.timedelta(hours=k))
        batch = [{**r, "id": f"r{k}-{r['id']}"} for r in records]
        truth_of |= {b["id"]: t for b, t in zip(batch, truth, strict=True)}
        post(client, batch)
        resolve_with_truth(client, ana, truth_of)
    items = windows(client, limit=reps)
    assert len(items) == reps
    audited = [w["metrics"]["accuracy"]["audited"] for w in items]
    values = np.array([a["value"] for a in audited])
    covered = np.mean([a["ci_low"] <= true_accuracy <= a["ci_high"] for a in audited])
    bias = values.mean() - true_accuracy
    assert abs(bias) < 3 * values.std(ddof=1) / np.sqrt(reps), (bias, values.std())
    assert covered >= 0.85, covered


def test_recorded_probabilities_give_unbiased_totals_over_repeated_draws(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same 200 records drawn again in each of 60 hours (flagged below confidence 0.9:
    values from 0.25 to 1.05, so π varies fourfold): over the draws the Horvitz–Thompson
    totals of the tickets (Σ 1/π: the flagged records; Σ y/π: those the model got right)
    average to the true totals, and their 95% intervals cover them. A π that is not the
    true probability of its record's draw would bias both."""
    reps, size = 60, 200
    setup_model(
        client,
        confidence_threshold=0.9,
        window={"kind": "count", "size": size, "step": size},
        options={"ticket_budget_per_hour": 30},
    )
    records, truth = simulate(size, seed=8, prefix="pop")
    right = {r["id"]: float(r["prediction"] == t) for r, t in zip(records, truth, strict=True)}
    flagged = [r["id"] for r in records if r["confidence"] < 0.9]
    true_totals = np.array([len(flagged), sum(right[i] for i in flagged)])
    start = (utcnow() - dt.timedelta(hours=reps + 1)).replace(minute=59, second=0, microsecond=0)
    for k in range(reps):
        _at(monkeypatch, start + dt.timedelta(hours=k))
        post(client, [{**r, "id": f"d{k}-{r['id']}"} for r in records])
    by_rep: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in _all_tickets(client, kind="low_confidence"):
        by_rep[t["prediction_id"].split("-", 1)[0]].append(t)
    assert len(by_rep) == reps
    estimates, covered = [], []
    for mine in by_rep.values():
        pi = np.array([t["inclusion_probability"] for t in mine])
        assert pi.min() > 0 and pi.max() / pi.min() > 2  # proportional to value, not uniform
        y = np.array([right[t["prediction_id"].split("-", 1)[1]] for t in mine])
        rep = []
        for values, true in zip((np.ones_like(y), y), true_totals, strict=True):
            total, variance = horvitz_thompson(values, pi)
            rep.append(total)
            covered.append(abs(total - true) <= 1.96 * np.sqrt(variance))
        estimates.append(rep)
    est = np.array(estimates)
    bias = est.mean(axis=0) - true_totals
    se = est.std(axis=0, ddof=1) / np.sqrt(reps)
    assert np.all(np.abs(bias) < 3 * se), (bias, se)
    assert np.mean(covered) >= 0.88, np.mean(covered)
