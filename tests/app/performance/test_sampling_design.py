"""Every ticket records how its record was chosen: inclusion probability and stratum."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.db import Database
from tests.exceptions_queue.helpers import open_incident, post, prediction_ids, seed, tickets
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


def test_budget_lowers_the_probability_to_the_share_admitted(client: TestClient) -> None:
    seed(client, 0, ticket_budget_per_hour=12)
    post(client, 8, prefix="a")  # 8 flagged, 12 of budget: all admitted
    post(client, 8, prefix="b")  # 4 of 8 admitted: 12 admitted of 16 considered this hour
    items = sorted(_tickets(client, kind="low_confidence"), key=lambda t: t["id"])
    assert len(items) == 12
    assert [t["inclusion_probability"] for t in items[:8]] == [1.0] * 8
    assert [t["inclusion_probability"] for t in items[8:]] == [0.75] * 4
    post(client, 4, prefix="c")  # budget spent: nothing admitted, nothing recorded
    assert len(_tickets(client, kind="low_confidence")) == 12


def test_budget_scales_the_audit_rate(client: TestClient) -> None:
    seed(client, 0, ticket_budget_per_hour=10, audit_rate=0.5)
    # 6 flagged (priority over audits) and ~half of 40 confident ones drawn for audit
    r = client.post(
        "/v1/models/churn/predictions",
        json={
            "predictions": predictions(6, prefix="low", confidence=0.3)
            + predictions(40, prefix="ok", seed=3)
        },
    )
    assert r.status_code == 202, r.text
    flagged = _tickets(client, kind="low_confidence")
    audits = _tickets(client, kind="audit")
    assert len(flagged) == 6 and len(audits) == 4
    assert {t["inclusion_probability"] for t in flagged} == {1.0}
    drawn = len(audits) + _suppressed_audits(client)
    assert drawn > 4
    assert {t["inclusion_probability"] for t in audits} == {0.5 * 4 / drawn}


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
