"""Data for the UI tests: a model with reference, traffic, evaluations, an incident and tickets."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.db import Database
from app.drift import service as drift_service
from app.settings import Settings
from tests.factories import create_model_with_reference, predictions


def post(client: TestClient, records: list[dict[str, Any]], model: str = "churn") -> None:
    for i in range(0, len(records), 500):
        r = client.post(
            f"/v1/models/{model}/predictions", json={"predictions": records[i : i + 500]}
        )
        assert r.status_code == 202, r.text


def low_confidence(n: int, *, seed: int = 50, prefix: str = "low") -> list[dict[str, Any]]:
    """Predictions under the model's 0.6 confidence threshold: one ticket each."""
    return predictions(n, seed=seed, prefix=prefix, confidence=0.41)


def seed_traffic(client: TestClient, db: Database, settings: Settings, *, tickets: int = 3) -> None:
    """churn: a clean window, a drifted one (an incident and its drift ticket), low-confidence tickets."""
    create_model_with_reference(client)
    post(client, predictions(1000, seed=11))
    drift_service.run_due_evaluations(db, settings)
    post(client, predictions(1000, seed=12, prefix="shift", age_shift=15.0))
    drift_service.run_due_evaluations(db, settings)
    if tickets:
        post(client, low_confidence(tickets))
