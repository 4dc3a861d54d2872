"""/openapi.json is a valid OpenAPI document whose every $ref resolves.

The ingest body (POST .../predictions) once referred to components that did not
exist, so the one schema every client needs could not be read from it.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from app.main import create_app
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # the schema does not depend on the database: no migrations needed to read it
    url = f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'dd.db'}"
    app = create_app(make_settings(url))
    document: dict[str, Any] = app.openapi()
    return document


def test_the_served_document_is_this_one(client: TestClient, schema: dict[str, Any]) -> None:
    assert client.get("/openapi.json").json() == schema


def refs(node: Any, where: str = "#") -> list[tuple[str, str]]:
    """Every ``$ref`` in the document, with where it is."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append((where, value))
            else:
                found += refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += refs(value, f"{where}/{i}")
    return found


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are expected, not {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_every_reference_resolves(schema: dict[str, Any]) -> None:
    found = refs(schema)
    assert found, "expected component references"
    dangling = [(where, ref) for where, ref in found if not _resolves(schema, ref)]
    assert dangling == [], dangling


def _resolves(schema: dict[str, Any], ref: str) -> bool:
    try:
        resolve(schema, ref)
    except AssertionError:
        return False
    return True


def test_the_document_is_valid_openapi(schema: dict[str, Any]) -> None:
    validate(schema)  # raises with the offending part if not


def test_the_ingest_body_is_readable_from_the_schema(schema: dict[str, Any]) -> None:
    body = schema["paths"]["/v1/models/{name}/predictions"]["post"]["requestBody"]
    one_of = body["content"]["application/json"]["schema"]["oneOf"]
    record, batch = one_of
    assert {"features", "prediction"} <= set(record["required"])
    assert set(record["properties"]) >= {"id", "timestamp", "features", "prediction", "confidence"}
    items = batch["properties"]["predictions"]["items"]
    assert items["required"] == record["required"]
