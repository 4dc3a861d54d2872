"""Retention deletes old raw rows, except those a label or an open ticket needs."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import Database
from app.ops.retention import run_retention
from app.settings import Settings
from storage.tables import Prediction
from tests.factories import create_model_with_reference, make_key, predictions


def test_old_rows_go_unless_a_label_or_open_ticket_needs_them(
    client: TestClient, db: Database, settings: Settings
) -> None:
    create_model_with_reference(client)
    old = predictions(50, seed=1, prefix="old", confidence=0.9)
    old[0]["confidence"] = 0.3  # a low-confidence ticket: still open
    old[1]["confidence"] = 0.3  # another, which a reviewer resolves: a label
    for r in old:
        r["timestamp"] = "2020-01-01T00:00:00Z"
    fresh = predictions(20, seed=2, prefix="new")
    for r in fresh:
        r["timestamp"] = dt.datetime.now(dt.UTC).isoformat()
    assert (
        client.post("/v1/models/churn/predictions", json={"predictions": old + fresh}).status_code
        == 202
    )

    reviewer = make_key(client, "review")
    # claim every ticket; resolve the one about old[1], keep the rest claimed (unfinished)
    while (r := client.post("/v1/tickets/claim", headers=reviewer, json={})).status_code == 200:
        ticket = r.json()
        if ticket["prediction_id"] == old[1]["id"]:
            done = client.post(
                f"/v1/tickets/{ticket['id']}/resolve",
                headers=reviewer,
                json={"label": "stay", "lease_token": ticket["lease_token"]},
            )
            assert done.status_code == 200, done.text
    assert r.status_code == 204

    assert run_retention(db, settings) == 48
    assert run_retention(db, settings) == 0
    with db.session(readonly=True) as s:
        left = set(s.scalars(select(Prediction.client_id)))
        assert s.scalar(select(func.count()).select_from(Prediction)) == 22
    assert {old[0]["id"], old[1]["id"]} <= left
    assert {r["id"] for r in fresh} <= left


def test_zero_days_keeps_everything(client: TestClient, db: Database, settings: Settings) -> None:
    create_model_with_reference(client)
    records = predictions(10, seed=3)
    for r in records:
        r["timestamp"] = "2020-01-01T00:00:00Z"
    client.post("/v1/models/churn/predictions", json={"predictions": records})
    keep = settings.model_copy(update={"retention_days": 0})
    assert run_retention(db, keep) == 0
