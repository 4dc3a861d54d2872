"""Model settings `performance: {metric, min, max_drop}` on POST and PATCH /v1/models."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import model_body

DEFAULTS = {"max": None, "min_coverage": 0.05, "min_labels": 30}

REGRESSION = {"task": "regression", "labels": None, "confidence_threshold": None}


def _error(r: Any, loc: list[Any]) -> str:
    assert r.status_code == 422, r.text
    body = r.json()["error"]
    assert body["code"] == "validation_error"
    assert body["details"][0]["loc"] == loc, body
    message: str = body["message"]
    return message


def test_settings_round_trip(client: TestClient) -> None:
    perf = {"metric": "f1", "min": 0.8, "max_drop": 0.05}
    r = client.post("/v1/models", json=model_body(performance=perf))
    assert r.status_code == 201, r.text
    assert r.json()["performance"] == {**perf, **DEFAULTS}
    assert client.get("/v1/models/churn").json()["performance"] == {**perf, **DEFAULTS}
    r = client.patch("/v1/models/churn", json={"performance": {"min": 0.9}})
    assert r.status_code == 200, r.text
    assert r.json()["performance"] == {
        **DEFAULTS,
        "metric": "accuracy",
        "min": 0.9,
        "max_drop": None,
    }
    r = client.patch("/v1/models/churn", json={"performance": None})
    assert r.status_code == 200 and r.json()["performance"] is None


def test_default_is_none_and_metric_defaults_by_task(client: TestClient) -> None:
    r = client.post("/v1/models", json=model_body())
    assert r.json()["performance"] is None
    r = client.post(
        "/v1/models", json=model_body(name="price", **REGRESSION, performance={"max": 3.5})
    )
    assert r.status_code == 201, r.text
    assert r.json()["performance"] == {
        **DEFAULTS,
        "metric": "mae",
        "min": None,
        "max": 3.5,
        "max_drop": None,
    }


@pytest.mark.parametrize(
    ("body", "loc", "says"),
    [
        ({"performance": {"metric": "mae"}}, ["performance", "metric"], "regression metric"),
        ({"performance": {"metric": "auc"}}, ["performance", "metric"], "accuracy"),
        ({"performance": {"min": 1.5}}, ["performance", "min"], "1"),
        ({"performance": {"min": -0.1}}, ["performance", "min"], "0"),
        ({"performance": {"max_drop": 0}}, ["performance", "max_drop"], "0"),
        ({"performance": {"max_drop": 2}}, ["performance", "max_drop"], "at most 1"),
        ({"performance": {"max": 0.3}}, ["performance", "max"], "give min instead"),
        ({"performance": {"min": 0.8, "floor": 1}}, ["performance", "floor"], ""),
        (
            {"performance": {"metric": "roc_auc"}, "labels": ["a", "b", "c"]},
            ["performance", "metric"],
            "binary",
        ),
        ({"performance": {"metric": "accuracy"}, **REGRESSION}, ["performance", "metric"], "mae"),
        ({"performance": {"min": 0.5}, **REGRESSION}, ["performance", "min"], "give max"),
    ],
)
def test_invalid_settings_are_refused_on_create(
    client: TestClient, body: dict[str, Any], loc: list[str], says: str
) -> None:
    r = client.post("/v1/models", json=model_body(**body))
    assert says in _error(r, loc)
    assert client.get("/v1/models/churn").status_code == 404  # nothing was created


def test_invalid_patch_changes_nothing(client: TestClient) -> None:
    client.post("/v1/models", json=model_body(performance={"min": 0.8}))
    before = client.get("/v1/models/churn").json()
    r = client.patch(
        "/v1/models/churn", json={"performance": {"metric": "rmse"}, "confidence_threshold": 0.1}
    )
    assert "regression metric" in _error(r, ["performance", "metric"])
    after = client.get("/v1/models/churn").json()
    assert after == before
