"""Performance test data: a calibrated binary classifier whose world can shift."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

LABELS = ["stay", "churn"]


def simulate(
    n: int, *, seed: int, concept_shift: float = 0.0, prefix: str = "p"
) -> tuple[list[dict[str, Any]], list[str]]:
    """``n`` predictions of a calibrated model, and their true labels.

    The model's probability of churn is ``sigmoid(2x)``; the truth is drawn from
    ``sigmoid(2x - concept_shift)``, so a shift makes the model wrong while its
    inputs and scores look the same (what only labels can show).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    p = 1.0 / (1.0 + np.exp(-2.0 * x))
    truth_p = 1.0 / (1.0 + np.exp(-(2.0 * x - concept_shift)))
    truth = np.where(rng.random(n) < truth_p, "churn", "stay")
    records = []
    for i in range(n):
        churn = bool(p[i] >= 0.5)
        records.append(
            {
                "id": f"{prefix}-{seed}-{i}",
                "timestamp": "2026-11-24T10:00:00Z",
                "features": {"x": round(float(x[i]), 4), "plan": "pro" if i % 3 else "free"},
                "prediction": "churn" if churn else "stay",
                "confidence": round(float(max(p[i], 1 - p[i])), 6),
            }
        )
    return records, [str(t) for t in truth]


def model_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "churn",
        "task": "classification",
        "features": [
            {"name": "x", "type": "numerical"},
            {"name": "plan", "type": "categorical"},
        ],
        "labels": LABELS,
        "window": {"kind": "count", "size": 1000, "step": 1000},
        "confidence_threshold": 0.6,
        "performance": {"metric": "accuracy", "min": 0.75},
    }
    body.update(overrides)
    return body


def setup_model(client: httpx.Client, *, reference_rows: int = 2000, **overrides: Any) -> None:
    r = client.post("/v1/models", json=model_body(**overrides))
    assert r.status_code == 201, r.text
    records, truth = simulate(reference_rows, seed=100, prefix="ref")
    reference = [
        {
            "features": r["features"],
            "prediction": r["prediction"],
            "confidence": r["confidence"],
            "label": t,
        }
        for r, t in zip(records, truth, strict=True)
    ]
    r = client.post("/v1/models/churn/reference", json={"records": reference})
    assert r.status_code == 201, r.text


def post(client: httpx.Client, records: list[dict[str, Any]]) -> None:
    for i in range(0, len(records), 1000):
        r = client.post("/v1/models/churn/predictions", json={"predictions": records[i : i + 1000]})
        assert r.status_code == 202, r.text


def feedback(client: httpx.Client, records: list[dict[str, Any]], truth: list[str]) -> None:
    items = [{"id": r["id"], "label": t} for r, t in zip(records, truth, strict=True)]
    for i in range(0, len(items), 1000):
        r = client.post("/v1/models/churn/feedback", json={"feedback": items[i : i + 1000]})
        assert r.status_code == 202, r.text


def windows(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/models/churn/performance", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def resolve_with_truth(
    client: httpx.Client,
    headers: dict[str, str],
    truth_of: dict[str, str],
    *,
    most: int | None = None,
) -> int:
    """Claim and resolve every waiting ticket (or the first ``most``) with its record's true
    label; returns how many."""
    done = 0
    while most is None or done < most:
        r = client.post("/v1/tickets/claim", headers=headers)
        if r.status_code == 204:
            return done
        t = r.json()
        r = client.post(
            f"/v1/tickets/{t['id']}/resolve",
            headers=headers,
            json={"label": truth_of[t["prediction_id"]]},
        )
        assert r.status_code == 200, r.text
        done += 1
    return done
