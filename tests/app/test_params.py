"""Out-of-range numbers in paths and queries are 422s, never 500s, on both databases.

Every integer and number parameter of every operation has both bounds in the
OpenAPI document (from app.params), so a new route cannot forget them.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.params import INT32_MAX, INT64_MAX, MAX_SECONDS
from tests.factories import create_model_with_reference
from tests.ui.test_pages import sign_in

TOO_BIG_64 = str(INT64_MAX + 1)  # 9223372036854775808
TOO_BIG_32 = str(INT32_MAX + 1)  # 2147483648: past a PostgreSQL INTEGER

REFUSED = [
    ("GET", "/v1/tickets?max_age_seconds=1e12"),
    ("GET", "/v1/tickets?min_age_seconds=1e308"),
    ("GET", "/v1/tickets?max_age_seconds=-1"),
    ("GET", f"/v1/models/churn/drift/report?evaluation={TOO_BIG_64}"),
    ("GET", f"/v1/alerts/{TOO_BIG_64}"),
    ("DELETE", f"/v1/alert-silences/{TOO_BIG_64}"),
    ("DELETE", f"/v1/alert-silences/{TOO_BIG_32}"),
    ("GET", f"/v1/tickets/{TOO_BIG_64}"),
    ("GET", "/v1/alerts/0"),
]

AT_THE_BOUND = [
    ("GET", f"/v1/models/churn/drift/report?evaluation={INT64_MAX}", 404),
    ("GET", f"/v1/alerts/{INT64_MAX}", 404),
    ("DELETE", f"/v1/alert-silences/{INT32_MAX}", 404),
    ("GET", f"/v1/tickets/{INT64_MAX}", 404),
    ("GET", f"/v1/tickets?max_age_seconds={MAX_SECONDS:.0f}", 200),
    ("GET", f"/v1/tickets?min_age_seconds={MAX_SECONDS:.0f}", 200),
]


def test_out_of_range_numbers_are_422(client: TestClient) -> None:
    create_model_with_reference(client)
    for method, url in REFUSED:
        r = client.request(method, url)
        assert r.status_code == 422, (method, url, r.status_code, r.text[:300])
        assert r.json()["error"]["code"] == "validation_error", (url, r.text)


def test_the_largest_values_reach_the_database_and_answer(client: TestClient) -> None:
    create_model_with_reference(client)
    for method, url, status in AT_THE_BOUND:
        r = client.request(method, url)
        assert r.status_code == status, (method, url, r.status_code, r.text[:300])


def test_the_ui_bounds_its_ids_too(client: TestClient) -> None:
    create_model_with_reference(client)
    sign_in(client)
    for url in (
        f"/ui/models/churn/evaluations/{TOO_BIG_64}/report",
        f"/ui/tickets/{TOO_BIG_64}",
    ):
        r = client.get(url)
        assert 400 <= r.status_code < 500, (url, r.status_code)


def _numeric(schema: dict[str, Any]) -> list[dict[str, Any]]:
    options = schema.get("anyOf", [schema])
    return [s for s in options if s.get("type") in ("integer", "number")]


def test_every_numeric_parameter_is_bounded(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    unbounded, seen = [], 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                for option in _numeric(param.get("schema", {})):
                    seen += 1
                    low = "minimum" in option or "exclusiveMinimum" in option
                    high = "maximum" in option or "exclusiveMaximum" in option
                    if not (low and high):
                        unbounded.append(f"{method.upper()} {path} {param['name']}")
    assert seen >= 8
    assert unbounded == [], f"use the bounded types of app.params: {unbounded}"
