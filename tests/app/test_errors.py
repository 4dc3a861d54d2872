"""The one error shape, authentication (401) and scopes (403) on every route of the foundation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import create_model_with_reference, make_key, predictions

Route = tuple[str, str, dict[str, Any] | None]

# Every route of the foundation, with the scopes that may call it (admin may call all).
ROUTES: list[tuple[Route, frozenset[str]]] = [
    (("POST", "/v1/keys", {"name": "k", "scopes": ["review"]}), frozenset({"admin"})),
    (("GET", "/v1/keys", None), frozenset({"admin"})),
    (("DELETE", "/v1/keys/nosuchkey", None), frozenset({"admin"})),
    (
        ("POST", "/v1/models", {"name": "other", "task": "regression", "features": []}),
        frozenset({"admin"}),
    ),
    (("GET", "/v1/models", None), frozenset({"admin", "review"})),  # ingest: one model by name
    (("GET", "/v1/models/churn", None), frozenset({"admin", "review", "ingest"})),
    (("PATCH", "/v1/models/churn", {"strict": True}), frozenset({"admin"})),
    (("DELETE", "/v1/models/nosuchmodel", None), frozenset({"admin"})),
    (("POST", "/v1/models/churn/reference", {"records": []}), frozenset({"admin", "ingest"})),
    (
        ("POST", "/v1/models/churn/reference/from-window", {"start": "x", "end": "y"}),
        frozenset({"admin"}),
    ),
    (("GET", "/v1/models/churn/reference", None), frozenset({"admin", "review", "ingest"})),
    (("POST", "/v1/models/churn/predictions", {"predictions": []}), frozenset({"admin", "ingest"})),
    (("GET", "/v1/models/churn/predictions", None), frozenset({"admin", "review"})),
    (("POST", "/v1/models/churn/feedback", {"feedback": []}), frozenset({"admin", "ingest"})),
]


def call(client: TestClient, route: Route, headers: dict[str, str] | None = None) -> Any:
    method, path, body = route
    return client.request(method, path, json=body, headers=headers)


def assert_error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    error: dict[str, Any] = body["error"]
    return error


def test_every_route_needs_a_key(client: TestClient) -> None:
    create_model_with_reference(client)
    for route, _scopes in ROUTES:
        for headers in (
            {"Authorization": ""},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer   "},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Authorization": "dd_no_scheme_at_all"},
            {"Authorization": "Bearer dd_unknown_0123456789"},
        ):
            r = call(client, route, headers)
            err = assert_error(r, 401, "unauthorized")
            assert r.headers["www-authenticate"] == "Bearer", route
            assert "key" in err["message"].lower()
    # nothing was created by any of the refused requests
    keys = client.get("/v1/keys").json()["items"]
    assert [k["name"] for k in keys] == ["bootstrap-admin"]
    assert client.get("/v1/models").json()["items"][0]["records"] == 0


def test_missing_key_is_not_the_same_message_as_a_malformed_one(client: TestClient) -> None:
    missing = client.get("/v1/keys", headers={"Authorization": ""}).json()["error"]["message"]
    malformed = client.get("/v1/keys", headers={"Authorization": "Token abc"}).json()["error"]
    unknown = client.get("/v1/keys", headers={"Authorization": "Bearer dd_x_y"}).json()["error"]
    assert "missing" in missing
    assert "malformed" in malformed["message"]
    assert "unknown" in unknown["message"]


@pytest.mark.parametrize("scope", ["ingest", "review"])
def test_each_scope_on_each_route(client: TestClient, scope: str) -> None:
    create_model_with_reference(client)
    headers = make_key(client, scope, name=f"only-{scope}")
    for route, allowed in ROUTES:
        r = call(client, route, headers)
        if scope in allowed:
            assert r.status_code not in (401, 403), (route, r.text)
        else:
            err = assert_error(r, 403, "forbidden")
            assert "scope" in err["message"], route
    # a forbidden key changed nothing: no second model, no key, no predictions
    names = [m["name"] for m in client.get("/v1/models").json()["items"]]
    assert names == ["churn"]
    assert len(client.get("/v1/keys").json()["items"]) == 2


def test_a_key_with_several_scopes_holds_each(client: TestClient) -> None:
    create_model_with_reference(client)
    both = make_key(client, "ingest", "review")
    r = client.post("/v1/models/churn/predictions", json=predictions(3)[0], headers=both)
    assert r.status_code == 202, r.text
    assert client.get("/v1/models/churn/predictions", headers=both).status_code == 200
    assert_error(client.get("/v1/keys", headers=both), 403, "forbidden")


def test_unknown_route_is_404_in_the_error_shape(client: TestClient) -> None:
    for path in ("/nope", "/v1", "/v1/modelz", "/v1/models/churn/nothing/here"):
        err = assert_error(client.get(path), 404, "not_found")
        assert err["details"] == []


def test_unknown_model_is_404_naming_it(client: TestClient) -> None:
    for method, path, body in [
        ("GET", "/v1/models/ghost", None),
        ("PATCH", "/v1/models/ghost", {"strict": False}),
        ("DELETE", "/v1/models/ghost", None),
        ("GET", "/v1/models/ghost/reference", None),
        ("POST", "/v1/models/ghost/reference", {"records": []}),
        ("POST", "/v1/models/ghost/predictions", predictions(1)[0]),
        ("GET", "/v1/models/ghost/predictions", None),
        ("POST", "/v1/models/ghost/feedback", {"feedback": [{"id": "a", "label": "stay"}]}),
        (
            "POST",
            "/v1/models/ghost/reference/from-window",
            {"start": "2026-11-24T00:00:00Z", "end": "2026-11-25T00:00:00Z"},
        ),
    ]:
        r = client.request(method, path, json=body)
        err = assert_error(r, 404, "not_found")
        assert "ghost" in err["message"], (method, path)


def test_method_not_allowed_is_405_in_the_error_shape(client: TestClient) -> None:
    for method, path in [
        ("PUT", "/v1/keys"),
        ("PATCH", "/v1/keys/abc"),
        ("PUT", "/v1/models/churn"),
        ("DELETE", "/v1/models/churn/predictions"),
        ("POST", "/healthz"),
    ]:
        r = client.request(method, path)
        err = assert_error(r, 405, "method_not_allowed")
        assert "allow" in r.headers, (method, path)
        assert method not in r.headers["allow"]
        assert err["details"] == []


def test_framework_validation_errors_have_the_shape_and_name_the_field(
    client: TestClient,
) -> None:
    r = client.post("/v1/keys", json={"name": "x", "scopes": ["ingest", "root"]})
    err = assert_error(r, 422, "validation_error")
    assert err["details"][0]["loc"] == ["scopes", 1]
    assert "scopes.1" in err["message"]
    r = client.get("/v1/keys", params={"limit": 0})
    err = assert_error(r, 422, "validation_error")
    assert err["details"][0]["loc"] == ["query", "limit"]
    r = client.get("/v1/keys", params={"limit": 1001})
    assert assert_error(r, 422, "validation_error")["details"][0]["loc"] == ["query", "limit"]
    r = client.post("/v1/keys", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 422, "validation_error")


def test_unsupported_media_type_is_415(client: TestClient) -> None:
    create_model_with_reference(client)
    for path in ("/v1/models/churn/predictions", "/v1/models/churn/reference"):
        r = client.post(path, content=b"age=41", headers={"content-type": "text/plain"})
        err = assert_error(r, 415, "unsupported_media_type")
        assert "application/json" in err["message"]
    r = client.post(
        "/v1/models/churn/predictions",
        content=b"<xml/>",
        headers={"content-type": "application/xml"},
    )
    assert_error(r, 415, "unsupported_media_type")
    assert client.get("/v1/models/churn").json()["records"] == 0


def test_a_bad_path_id_names_the_path_parameter(client: TestClient) -> None:
    for path, name in (
        ("/v1/tickets/abc", "ticket_id"),
        ("/v1/alerts/not-a-number", "alert_id"),
    ):
        err = assert_error(client.get(path), 422, "validation_error")
        assert err["details"][0]["loc"] == ["path", name], err
        assert err["message"].startswith(f"path.{name}:"), err


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded"])
def test_a_json_body_is_json_without_the_header(
    client: TestClient, content_type: str | None
) -> None:
    # what `curl -d '{...}'` (form-urlencoded) or a bare client (no header) sends
    headers = {"content-type": content_type} if content_type else {}
    create_model_with_reference(client)
    body = b'{"name": "ana", "scopes": ["review"]}'
    r = client.post("/v1/keys", content=body, headers=headers)
    assert r.status_code == 201, r.text
    records = predictions(2, prefix=f"bare-{content_type}")
    r = client.post(
        "/v1/models/churn/predictions",
        content=b'\n  {"predictions": ' + json.dumps(records).encode() + b"}",
        headers=headers,
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 2
    r = client.post("/v1/tickets/claim", content=b"{}", headers=headers)
    assert r.status_code in (200, 204), r.text
    # a body that is not JSON still gets the contract's answer, not a guess
    r = client.post("/v1/models/churn/predictions", content=b"age=41", headers=headers)
    assert r.status_code in (415, 422), r.text
    assert client.get("/v1/models/churn").json()["records"] == 2


def test_a_body_that_is_not_json_is_a_422_naming_the_body(client: TestClient) -> None:
    for body in (b"\xff\xfe", b"{not json"):
        r = client.post("/v1/keys", content=body, headers={"content-type": "application/json"})
        err = assert_error(r, 422, "validation_error")
        assert err["details"][0]["loc"] == ["body"], err
    create_model_with_reference(client)
    boundary = "7c5156fb04a2177cf9e322ad31ebde44"
    r = client.post(
        "/v1/models/churn/reference",
        content=f"--{boundary}\r\nNone--{boundary}--\r\n".encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    err = assert_error(r, 422, "validation_error")
    assert err["details"][0]["loc"] == ["body"], err
