"""Every ticket records how its record was chosen: inclusion probability and stratum."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from exceptions_queue.tables import SampleDraw
from tests.exceptions_queue.helpers import (
    open_incident,
    pin_ingest_clock,
    prediction_ids,
    seed,
    tickets,
)
from tests.factories import create_model, predictions


def _tickets(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/tickets", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_flagged_tickets_have_probability_one(client: TestClient) -> None:
    seed(client, 6)
    items = _tickets(client, kind="low_confidence")
    assert len(items) == 6
    assert {(t["inclusion_probability"], t["sampling_stratum"]) for t in items} == {
        (1.0, "flagged")
    }
    one = client.get(f"/v1/tickets/{items[0]['id']}").json()
    assert one["inclusion_probability"] == 1.0
    assert one["sampling_stratum"] == "flagged"


def test_audit_tickets_carry_the_audit_rate(client: TestClient) -> None:
    create_model(client, options={"audit_rate": 0.25})
    r = client.post("/v1/models/churn/predictions", json={"predictions": predictions(400)})
    assert r.status_code == 202, r.text
    audits = _tickets(client, kind="audit")
    assert 60 <= len(audits) <= 140  # 25% of 400, drawn
    assert {(t["inclusion_probability"], t["sampling_stratum"]) for t in audits} == {
        (0.25, "unflagged")
    }


def test_a_budget_draws_flagged_records_by_value(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_ingest_clock(monkeypatch)
    seed(client, 0, ticket_budget_per_hour=6)
    # the less confident, the more a label is worth: confidence 0.3 (uncertainty 1.0)
    # against 0.55 (0.9), each record alone in its group (no reference: no bins)
    rows = predictions(40, prefix="unsure", confidence=0.3) + predictions(
        40, prefix="surer", confidence=0.55, seed=2
    )
    r = client.post("/v1/models/churn/predictions", json={"predictions": rows})
    assert r.status_code == 202, r.text
    with db.session(readonly=True) as s:
        draws = s.scalars(select(SampleDraw)).all()
    assert len(draws) == 80
    by_value = {round(d.value, 6): d.inclusion_probability for d in draws}
    assert sorted(by_value) == [0.95, 1.05]  # floor 0.05 + uncertainty
    assert by_value[1.05] / by_value[0.95] == pytest.approx(1.05 / 0.95)
    total = sum(d.inclusion_probability for d in draws)
    assert 0 < total <= 6
    items = _tickets(client, kind="low_confidence")
    assert len(items) == sum(d.sampled for d in draws)
    assert {round(t["inclusion_probability"], 9) for t in items} <= {
        round(p, 9) for p in by_value.values()
    }
    assert all(t["inclusion_probability"] < 1 for t in items)


def test_audits_keep_their_rate_outside_the_budget(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_ingest_clock(monkeypatch)
    seed(client, 0, ticket_budget_per_hour=1, audit_rate=0.5)
    r = client.post(
        "/v1/models/churn/predictions",
        json={
            "predictions": predictions(6, prefix="low", confidence=0.3)
            + predictions(40, prefix="ok", seed=3)
        },
    )
    assert r.status_code == 202, r.text
    audits = _tickets(client, kind="audit")
    assert 10 <= len(audits) <= 30  # half of 40, drawn: not capped by the budget of 1
    assert {t["inclusion_probability"] for t in audits} == {0.5}
    assert _suppressed_audits(client) == 0
    assert all(t["inclusion_probability"] < 1 for t in _tickets(client, kind="low_confidence"))


def _suppressed_audits(client: TestClient) -> int:
    r = client.get("/v1/tickets/summary")
    if r.status_code != 200:
        raise AssertionError(r.text)
    return sum(s["count"] for s in r.json()["suppressed"] if s["kind"] == "audit")


def test_drift_samples_and_feedback_mismatch_are_not_probability_samples(
    client: TestClient, db: Database
) -> None:
    seed(client, 4)
    open_incident(db, sample=tuple(prediction_ids(db)[:2]))
    r = client.post(
        "/v1/models/churn/feedback", json={"feedback": [{"id": "req-1-0", "label": "x"}]}
    )
    assert r.status_code == 422  # (a label the model does not have)
    first = client.get("/v1/models/churn/predictions").json()["items"][0]
    wrong = "stay" if first["prediction"] == "churn" else "churn"
    r = client.post(
        "/v1/models/churn/feedback", json={"feedback": [{"id": first["id"], "label": wrong}]}
    )
    assert r.status_code == 202, r.text
    drift = tickets(db, kind="drift")
    mismatch = tickets(db, kind="feedback_mismatch")
    assert len(drift) == 1 and len(mismatch) == 1
    assert (drift[0].inclusion_probability, drift[0].sampling_stratum) == (None, "drift_sample")
    assert (mismatch[0].inclusion_probability, mismatch[0].sampling_stratum) == (
        None,
        "feedback_mismatch",
    )
