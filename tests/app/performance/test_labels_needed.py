"""An open incident that labels must decide raises the model's audit rate within its budget."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.drift.tables import DriftIncident
from app.ingest import endpoints as ingest_endpoints
from app.performance.incidents import run_due
from app.settings import Settings
from exceptions_queue.sampling import BOOST_SHARE
from exceptions_queue.tables import TicketVolume
from storage.base import utcnow
from tests.app.performance.helpers import post, resolve_with_truth, setup_model, simulate
from tests.exceptions_queue.helpers import model_id
from tests.factories import make_key
from tests.ui.test_pages import sign_in


def _hard(n: int, seed: int, prefix: str) -> tuple[list[dict[str, Any]], list[str]]:
    """``n`` records from the model's hard region (confidence below 0.7: about 60% right)."""
    records, truth = simulate(6 * n, seed=seed, prefix=prefix)
    pairs = [(r, t) for r, t in zip(records, truth, strict=True) if r["confidence"] < 0.7][:n]
    assert len(pairs) == n
    return [r for r, _ in pairs], [t for _, t in pairs]


def _audits(client: TestClient, prefix: str) -> list[dict[str, Any]]:
    items = client.get("/v1/tickets", params={"kind": "audit", "limit": 1000}).json()["items"]
    return [t for t in items if t["prediction_id"].startswith(prefix)]


def _model(client: TestClient, **options: Any) -> None:
    """500-record windows judged against an accuracy floor of 0.8."""
    setup_model(
        client,
        window={"kind": "count", "size": 500, "step": 500},
        performance={"metric": "accuracy", "min": 0.8},
        options=options,
    )


def _incident(client: TestClient) -> dict[str, Any]:
    r = client.get("/v1/models/churn/performance/incidents")
    assert r.status_code == 200, r.text
    [incident] = r.json()["items"]
    return dict(incident)


def test_an_undecided_incident_raises_the_audit_until_labels_decide_it(
    client: TestClient, db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _model(
        client,
        audit_rate=0.02,
        ticket_budget_per_hour=40,
        incident_open_after=1,
        incident_of_last=1,
    )
    start = (utcnow() - dt.timedelta(hours=5)).replace(minute=59, second=0, microsecond=0)
    truth_of: dict[str, str] = {}

    def window(k: int) -> list[dict[str, Any]]:
        monkeypatch.setattr(ingest_endpoints, "utcnow", lambda: start + dt.timedelta(hours=k))
        records, truth = _hard(500, seed=30 + k, prefix=f"w{k}")
        truth_of.update({r["id"]: t for r, t in zip(records, truth, strict=True)})
        post(client, records)
        return records

    # inputs moved into the hard region: the estimate without labels is below the floor
    window(0)
    run_due(db, settings)
    incident = _incident(client)
    assert incident["status"] == "open" and incident["source"] == "estimated"
    assert incident["needs_labels"] is True
    assert "judged without labels" in incident["labels_note"]
    assert "raised within the label budget (40 a hour)" in incident["labels_note"]
    [budget] = client.get("/v1/workforce").json()["label_budgets"]
    assert budget["audit_raised"] is True
    sign_in(client)
    page = client.get("/ui/models/churn").text
    assert "<h3>Performance</h3>" in page and "needs labels" in page
    assert "judged without labels" in page
    before = _audits(client, "w0-")
    assert {t["inclusion_probability"] for t in before} <= {0.02}
    # the next batch: more audits, each with the raised rate as its probability
    second = window(1)
    raised = _audits(client, "w1-")
    rates = {t["inclusion_probability"] for t in raised}
    assert len(rates) == 1
    [rate] = rates
    assert 0.02 + 0.5 * BOOST_SHARE * 40 / 500 < rate <= 0.5  # about 0.02 + 20 of ~250
    assert len(raised) > 3 * max(1, len(before))
    assert all(t["details"]["raised_from"] == 0.02 for t in raised)
    assert "raised from 2.0%" in raised[0]["reason"]
    # the raise is paid from the hour's budget: its expected extra audits count as spent
    unflagged = sum(r["confidence"] >= 0.6 for r in second)
    with db.session(readonly=True) as s:
        spent = dict(
            s.execute(
                select(TicketVolume.kind, TicketVolume.expected).where(
                    TicketVolume.hour == start.replace(minute=0) + dt.timedelta(hours=1)
                )
            ).all()
        )
    assert spent["audit"] == pytest.approx((rate - 0.02) * unflagged)
    assert spent["audit"] + spent["low_confidence"] <= 40 + 1e-9
    # reviewers label the window: the audited accuracy decides it (well below 0.8)
    resolve_with_truth(client, make_key(client, "review", name="ana"), truth_of)
    run_due(db, settings)
    incident = _incident(client)
    assert incident["status"] == "open" and incident["needs_labels"] is False, incident[
        "labels_note"
    ]
    assert incident["labels_note"].startswith("decided: the audited accuracy")
    assert "below the bound 0.8" in incident["labels_note"]
    # decided: the audit is back to its own rate
    window(2)
    assert {t["inclusion_probability"] for t in _audits(client, "w2-")} <= {0.02}


def test_an_open_drift_incident_says_so_too(
    client: TestClient, db: Database, settings: Settings
) -> None:
    _model(client)
    with db.session() as s:
        s.add(
            DriftIncident(
                model_id=model_id(db),
                status="open",
                severity="warning",
                drifted_features=["x"],
                opened_at=utcnow(),
                opened_evaluation_id=0,
                last_evaluation_id=0,
            )
        )
    records, _ = _hard(500, seed=40, prefix="d")
    post(client, records)
    run_due(db, settings)
    r = client.get("/v1/models/churn/drift/incidents")
    assert r.status_code == 200, r.text
    [incident] = r.json()["items"]
    assert incident["needs_labels"] is True
    assert "no label budget is set" in incident["labels_note"]
    sign_in(client)
    page = client.get("/ui/models/churn")
    assert page.status_code == 200
    assert "needs labels" in page.text and "no label budget is set" in page.text
