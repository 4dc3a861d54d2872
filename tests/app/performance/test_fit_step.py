"""DLE's loss models are fitted by a background step, not by the reference upload."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.performance import fit_step
from app.performance.fit_step import fit_pending
from app.performance.tables import PerformancePart, PerformanceReference
from app.settings import Settings
from storage.base import utcnow


def _model(client: TestClient) -> None:
    body = {
        "name": "price",
        "task": "regression",
        "features": [{"name": "x", "type": "numerical"}],
        "window": {"kind": "count", "size": 200, "step": 200},
    }
    assert client.post("/v1/models", json=body).status_code == 201


def _records(n: int, seed: int, prefix: str, label: bool) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    y = 3 * x + rng.normal(0, 1, n) * (0.5 + np.abs(x))
    out = []
    for i in range(n):
        rec: dict[str, Any] = {"features": {"x": float(x[i])}, "prediction": float(3 * x[i])}
        if label:
            rec["label"] = float(y[i])
        else:
            rec["id"] = f"{prefix}{i}"
        out.append(rec)
    return out


def _upload(client: TestClient, seed: int, rows: int = 300) -> dict[str, Any]:
    r = client.post(
        "/v1/models/price/reference",
        json={"records": _records(rows, seed, "r", label=True)},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _estimated(client: TestClient) -> list[Any]:
    items = client.get("/v1/models/price/performance").json()["items"]
    return [w["metrics"]["mae"]["estimated"] for w in items]


def test_a_claim_is_held_until_it_is_stale(client: TestClient, db: Database) -> None:
    _model(client)
    _upload(client, seed=1)
    now = utcnow()
    with db.session() as s:
        first = fit_step._claim(s, now)
    assert first is not None and len(first[2]) > 0
    with db.session() as s:  # another process: nothing to claim while the claim is fresh
        assert fit_step._claim(s, now + dt.timedelta(seconds=60)) is None
    later = now + dt.timedelta(seconds=fit_step.CLAIM_SECONDS + 1)
    with db.session() as s:  # the first died mid-fit: its claim is taken over
        again = fit_step._claim(s, later)
    assert again is not None and again[0] == first[0]


def test_only_the_models_current_reference_is_backfilled(
    client: TestClient, db: Database, settings: Settings
) -> None:
    _model(client)
    old = _upload(client, seed=1)
    new = _upload(client, seed=2)
    assert old["performance"]["status"] == new["performance"]["status"] == "fitting"
    r = client.post(
        "/v1/models/price/predictions", json={"predictions": _records(200, 3, "a", label=False)}
    )
    assert r.status_code == 202
    assert _estimated(client) == [None]
    assert fit_pending(db, settings) == 1  # the old reference: fitted, not backfilled
    assert fit_pending(db, settings) == 1  # the current one: fitted and backfilled
    assert fit_pending(db, settings) == 0
    with db.session(readonly=True) as s:
        refs = {
            r.reference_id: (r.status, r.loss_model is not None, r.fit_data)
            for r in s.scalars(select(PerformanceReference))
        }
        used = set(
            s.scalars(
                select(PerformancePart.reference_id).where(PerformancePart.kind == "estimated")
            )
        )
    assert refs == {old["id"]: ("ready", True, None), new["id"]: ("ready", True, None)}
    assert used == {new["id"]}
    [est] = _estimated(client)
    assert est is not None and est["n"] == 200
    # once ready, ingest adds the sums itself
    r = client.post(
        "/v1/models/price/predictions", json={"predictions": _records(200, 4, "b", label=False)}
    )
    assert r.status_code == 202
    assert [e["n"] for e in _estimated(client)] == [200, 200]


def test_a_reference_that_cannot_fit_says_why(
    client: TestClient, db: Database, settings: Settings
) -> None:
    _model(client)
    # 120 rows, 50 of them labelled: too few for the loss models, said at once
    records = _records(120, 5, "r", label=True)
    for rec in records[50:]:
        rec["label"] = None
    r = client.post("/v1/models/price/reference", json={"records": records})
    assert r.status_code == 201, r.text
    perf = r.json()["performance"]
    assert perf["status"] == "ready" and perf["label_free_estimate"] is False
    assert "at least 100" in perf["note"]
