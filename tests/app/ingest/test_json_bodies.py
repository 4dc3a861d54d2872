"""Hostile JSON bodies: deep nesting, NUL deep inside, non-finite numbers — 4xx, never a 500."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from app.ingest.parse import path_at
from tests.factories import create_model_with_reference, predictions

DEEP_ARRAYS = "[" * 1100 + "]" * 1100
DEEP_OBJECTS = '{"a":' * 1100 + "1" + "}" * 1100
JSON_HEADERS = {"content-type": "application/json"}


def post(client: TestClient, url: str, text: str) -> Any:
    return client.post(url, content=text.encode(), headers=JSON_HEADERS)


def test_deep_nesting_is_422_on_predictions_and_reference(client: TestClient) -> None:
    create_model_with_reference(client)
    for url in ("/v1/models/churn/predictions", "/v1/models/churn/reference"):
        for body in (DEEP_ARRAYS, DEEP_OBJECTS, '{"predictions": ' + DEEP_ARRAYS + "}"):
            r = post(client, url, body)
            assert r.status_code == 422, (url, r.text[:300])
            error = r.json()["error"]
            assert error["code"] == "validation_error"
            assert "nested more than 1024 levels" in error["message"]
            assert error["details"] == [{"loc": ["body"], "msg": error["message"]}] or error[
                "details"
            ][0]["loc"] == ["body"]
    assert client.get("/v1/models/churn/predictions").json()["items"] == []


def test_a_nul_deep_inside_is_422_not_a_crash(client: TestClient) -> None:
    create_model_with_reference(client)
    record = predictions(1)[0]
    deep = "[" * 1000 + '"x\\u0000"' + "]" * 1000
    body = json.dumps(record).replace('"prediction": "stay"', f'"prediction": {deep}')
    body = body.replace('"prediction": "churn"', f'"prediction": {deep}')
    r = post(client, "/v1/models/churn/predictions", body)
    assert r.status_code == 422, r.text[:300]
    assert r.json()["error"]["details"][0]["loc"][0] == "prediction"


def test_every_json_body_refuses_deep_nesting_in_the_contracts_shape(client: TestClient) -> None:
    create_model_with_reference(client)
    schema = client.get("/openapi.json").json()
    tried = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            url = path.replace("{name}", "churn").replace("{id}", "1")
            url = url.replace("{ticket_id}", "1").replace("{key_id}", "x")
            for body in (DEEP_ARRAYS, DEEP_OBJECTS):
                r = client.request(method, url, content=body.encode(), headers=JSON_HEADERS)
                assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text[:300])
                assert set(r.json()["error"]) == {"code", "message", "details"}, (method, path)
            tried += 1
    assert tried >= 10


def test_non_finite_numbers_name_their_field() -> None:
    text = '{"predictions": [{"id": "a"}, {"features": {"age": NaN, "x": [1, -Infinity]}}]}'
    assert path_at(text, text.index("NaN")) == ["predictions", 1, "features", "age"]
    assert path_at(text, text.index("Infinity")) == ["predictions", 1, "features", "x", 1]
    tricky = '{"a\\"{[": {"b,": ["]", {"c": NaN}]}}'
    assert path_at(tricky, tricky.index("NaN")) == ['a"{[', "b,", 1, "c"]


def test_numbers_beyond_a_double_name_their_field(client: TestClient) -> None:
    create_model_with_reference(client)
    record = json.dumps(predictions(1)[0])
    body = record.replace('"confidence": 0.9', '"confidence": 1e400')
    r = post(client, "/v1/models/churn/predictions", body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["loc"] == ["confidence"]
