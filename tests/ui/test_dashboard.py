"""The model dashboard's figures, read from a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient

from app.catalog.service import active_model
from app.db import Database
from app.ui import dashboard
from tests.factories import create_model, predictions, reference_records
from tests.ui.test_pages import sign_in


def spread(n: int, start: dt.datetime, seconds: float, *, prefix: str) -> list[dict[str, Any]]:
    """``n`` predictions evenly spread over ``seconds`` from ``start``."""
    records = predictions(n, prefix=prefix)
    for i, record in enumerate(records):
        at = start + dt.timedelta(seconds=seconds * i / n)
        record["timestamp"] = at.isoformat().replace("+00:00", "Z")
    return records


def test_ingest_volume_counts_every_prediction_of_each_hour(
    client: TestClient, db: Database
) -> None:
    create_model(client)
    now = dt.datetime(2026, 11, 24, 12, 30, tzinfo=dt.UTC)
    hour = dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)
    batches = [
        spread(1200, hour, 3600, prefix="ten"),  # one every 3 s across 10:00-11:00
        spread(300, hour + dt.timedelta(hours=1), 1800, prefix="eleven"),  # 11:00-11:30
        spread(7, hour - dt.timedelta(hours=3), 3599, prefix="seven"),  # 07:00-08:00
    ]
    for batch in batches:
        r = client.post("/v1/models/churn/predictions", json={"predictions": batch})
        assert r.status_code == 202, r.text
    with db.session(readonly=True) as session:
        volume = dashboard.ingest_volume(session, active_model(session, "churn"), now)
    counts = {at: n for at, n in volume if n}
    assert counts == {
        hour: 1200,
        hour + dt.timedelta(hours=1): 300,
        hour - dt.timedelta(hours=3): 7,
    }
    assert sum(n for _, n in volume) == 1507


def test_empty_charts_say_why_and_what_to_do(client: TestClient) -> None:
    create_model(client)
    sign_in(client)
    text = dashboard_text(client)
    assert "No confidences counted: the model has no reference yet" in text
    # a reference without prediction or confidence columns: no bins to count them in
    records = [{"features": r["features"]} for r in reference_records(200)]
    r = client.post("/v1/models/churn/reference", json={"records": records})
    assert r.status_code == 201, r.text
    r = client.post("/v1/models/churn/predictions", json={"predictions": predictions(50)})
    assert r.status_code == 202, r.text
    text = dashboard_text(client)
    assert "No confidences counted: the reference has no &#39;confidence&#39; column" in text
    assert "Reference data" in text
    # a reference with them: the charts, no excuse
    r = client.post("/v1/models/churn/reference", json={"records": reference_records(200)})
    assert r.status_code == 201, r.text
    text = dashboard_text(client)
    assert "No confidences counted" not in text
    assert "No predictions counted" not in text


def dashboard_text(client: TestClient) -> str:
    r = client.get("/ui/models/churn")
    assert r.status_code == 200, r.text[:300]
    return r.text
