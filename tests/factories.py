"""Test data as plain functions with overridable defaults."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi.testclient import TestClient

PLANS = ["free", "pro", "team"]


def make_key(client: TestClient, *scopes: str, name: str = "test-key") -> dict[str, str]:
    """Create a key with ``scopes``; returns the Authorization header for it."""
    r = client.post("/v1/keys", json={"name": name, "scopes": list(scopes)})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['secret']}"}


def model_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "churn",
        "task": "classification",
        "features": [
            {"name": "age", "type": "numerical"},
            {"name": "income", "type": "numerical"},
            {"name": "plan", "type": "categorical"},
        ],
        "labels": ["stay", "churn"],
        "window": {"kind": "count", "size": 1000, "step": 500},
        "confidence_threshold": 0.6,
    }
    body.update(overrides)
    return body


def feature_rows(n: int, *, seed: int = 0, age_shift: float = 0.0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    ages = rng.normal(40 + age_shift, 10, n)
    incomes = rng.lognormal(10, 0.5, n)
    plans = rng.choice(PLANS, n, p=[0.6, 0.3, 0.1])
    return [
        {"age": round(float(a), 2), "income": round(float(i), 2), "plan": str(p)}
        for a, i, p in zip(ages, incomes, plans, strict=True)
    ]


def reference_records(n: int = 500, *, seed: int = 0) -> list[dict[str, Any]]:
    rows = feature_rows(n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    return [
        {"features": f, "prediction": "churn" if rng.random() < 0.2 else "stay", "confidence": 0.9}
        for f in rows
    ]


def predictions(
    n: int, *, seed: int = 1, prefix: str = "req", age_shift: float = 0.0, confidence: float = 0.9
) -> list[dict[str, Any]]:
    rows = feature_rows(n, seed=seed, age_shift=age_shift)
    churn = np.random.default_rng(seed + 1).random(n) < 0.2  # as in the reference
    return [
        {
            "id": f"{prefix}-{seed}-{i}",
            "timestamp": "2026-11-24T10:00:00Z",
            "features": f,
            "prediction": "churn" if c else "stay",
            "confidence": confidence,
        }
        for i, (f, c) in enumerate(zip(rows, churn, strict=True))
    ]


def create_model(client: TestClient, **overrides: Any) -> dict[str, Any]:
    r = client.post("/v1/models", json=model_body(**overrides))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def create_model_with_reference(client: TestClient, **overrides: Any) -> dict[str, Any]:
    model = create_model(client, **overrides)
    r = client.post(f"/v1/models/{model['name']}/reference", json={"records": reference_records()})
    assert r.status_code == 201, r.text
    return model


def create_model_with_file_reference(client: TestClient, **overrides: Any) -> dict[str, Any]:
    """As :func:`create_model_with_reference`, the reference uploaded as a CSV file.

    A file upload has its own, larger body limit (a JSON reference has the ordinary one).
    """
    model = create_model(client, **overrides)
    records = reference_records()
    lines = ["age,income,plan,prediction,confidence"] + [
        f"{r['features']['age']},{r['features']['income']},{r['features']['plan']},"
        f"{r['prediction']},{r['confidence']}"
        for r in records
    ]
    csv = ("\n".join(lines) + "\n").encode()
    r = client.post(
        f"/v1/models/{model['name']}/reference", files={"file": ("reference.csv", csv, "text/csv")}
    )
    assert r.status_code == 201, r.text
    return model
