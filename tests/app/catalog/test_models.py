"""/v1/models: create, read, list, change, archive; every kind of bad model definition."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import create_model, create_model_with_reference, model_body, predictions


def test_create_returns_the_model_with_its_defaults(client: TestClient) -> None:
    r = client.post(
        "/v1/models",
        json={
            "name": "house-price",
            "task": "regression",
            "features": [
                {"name": "rooms", "type": "numerical"},
                {"name": "city", "type": "categorical"},
            ],
        },
    )
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["name"] == "house-price"
    assert m["task"] == "regression"
    assert m["features"] == [
        {"name": "rooms", "type": "numerical", "required": False},
        {"name": "city", "type": "categorical", "required": False},
    ]
    assert m["labels"] is None
    assert m["window"] == {"kind": "count", "size": 5000, "step": 1000}
    assert m["confidence_threshold"] is None
    assert m["drift"]["detectors"] == "auto"
    assert m["drift"]["alpha"] == 0.01
    assert m["strict"] is True
    assert m["status"] == "active"
    assert m["records"] == 0
    assert m["reference"] is None
    assert m["archived_at"] is None
    assert m["created_at"].endswith("Z")


def test_create_the_example_of_the_contract(client: TestClient) -> None:
    body = {
        "name": "churn-classifier",
        "task": "classification",
        "features": [{"name": "age", "type": "numerical"}, {"name": "plan", "type": "categorical"}],
        "labels": ["stay", "churn"],
        "window": {"kind": "time", "size": "1h", "step": "10m"},
        "confidence_threshold": 0.6,
        "drift": {"detectors": "auto", "alpha": 0.01, "min_effect": "auto"},
        "strict": True,
    }
    r = client.post("/v1/models", json=body)
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["window"] == {"kind": "time", "size": "1h", "step": "10m"}
    assert m["labels"] == ["stay", "churn"]
    assert m["confidence_threshold"] == 0.6
    assert client.get("/v1/models/churn-classifier").json() == m


def test_duplicate_name_is_409_archived_included(client: TestClient) -> None:
    create_model(client)
    r = client.post("/v1/models", json=model_body(task="regression", labels=None))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    assert "churn" in r.json()["error"]["message"]
    assert client.delete("/v1/models/churn").status_code == 200
    assert client.post("/v1/models", json=model_body()).status_code == 409
    assert len(client.get("/v1/models").json()["items"]) == 1


def test_bad_definitions_are_422_naming_the_field(client: TestClient) -> None:
    numeric = [{"name": "x", "type": "numerical"}]
    cases: list[tuple[dict[str, Any], list[str | int]]] = [
        (model_body(name="has space"), ["name"]),
        (model_body(name=""), ["name"]),
        (model_body(name="-leading-dash"), ["name"]),
        (model_body(task="ranking"), ["task"]),
        (model_body(features=[]), ["features"]),
        (model_body(features=[{"name": "x", "type": "text"}]), ["features", 0, "type"]),
        (
            model_body(features=[*numeric, {"name": "__x", "type": "numerical"}]),
            ["features", 1, "name"],
        ),
        (
            model_body(features=[{"name": "bad\nname", "type": "numerical"}]),
            ["features", 0, "name"],
        ),
        (model_body(features=[*numeric, {"name": "x", "type": "categorical"}]), ["features"]),
        (model_body(features=[{"name": "x"}]), ["features", 0, "type"]),
        (
            model_body(features=[{"name": "x", "type": "numerical", "unit": "cm"}]),
            ["features", 0, "unit"],
        ),
        (model_body(labels=None), []),
        (model_body(labels=["only"]), []),
        (model_body(labels=["a", "a"]), []),
        (model_body(task="regression"), []),
        (model_body(window={"kind": "count", "size": 1000, "step": 300}), ["window"]),
        (model_body(window={"kind": "count", "size": 100, "step": 200}), ["window"]),
        (model_body(window={"kind": "count", "size": 0, "step": 0}), ["window"]),
        (model_body(window={"kind": "time", "size": "1 hour", "step": "10m"}), ["window"]),
        (model_body(window={"kind": "time", "size": "1h", "step": "7m"}), ["window"]),
        (model_body(window={"kind": "sliding", "size": 10, "step": 5}), ["window", "kind"]),
        (model_body(window={"kind": "count", "size": 10}), ["window", "step"]),
        (model_body(window={"kind": "count", "size": 100_000, "step": 10}), ["window"]),
        (model_body(confidence_threshold=1.5), ["confidence_threshold"]),
        (model_body(confidence_threshold=-0.1), ["confidence_threshold"]),
        (model_body(confidence_threshold="high"), ["confidence_threshold"]),
        (model_body(drift={"alpha": 0}), ["drift", "alpha"]),
        (model_body(drift={"alpha": 0.01, "correction": "holm"}), ["drift", "correction"]),
        (model_body(drift={"detectors": "fast"}), ["drift", "detectors"]),
        (model_body(strict="yes please"), ["strict"]),
        (model_body(options={"incident_open_after": 5, "incident_of_last": 3}), ["options"]),
        (model_body(options={"audit_rate": 2}), ["options", "audit_rate"]),
        (model_body(owner="me"), ["owner"]),
    ]
    for body, loc in cases:
        r = client.post("/v1/models", json=body)
        assert r.status_code == 422, (body, r.text)
        err = r.json()["error"]
        assert err["code"] == "validation_error"
        assert err["details"][0]["loc"] == loc, (body, err)
        assert err["message"]
    assert client.get("/v1/models").json()["items"] == []


def test_get_list_and_filter_by_status(client: TestClient) -> None:
    for name in ("b-model", "a-model", "c-model"):
        create_model(client, name=name)
    client.delete("/v1/models/b-model")
    names = [m["name"] for m in client.get("/v1/models").json()["items"]]
    assert names == ["a-model", "b-model", "c-model"]
    active = client.get("/v1/models", params={"status": "active"}).json()["items"]
    assert [m["name"] for m in active] == ["a-model", "c-model"]
    archived = client.get("/v1/models", params={"status": "archived"}).json()["items"]
    assert [m["name"] for m in archived] == ["b-model"]
    r = client.get("/v1/models", params={"status": "deleted"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"] == ["query", "status"]

    first = client.get("/v1/models", params={"limit": 2}).json()
    assert [m["name"] for m in first["items"]] == ["a-model", "b-model"]
    second = client.get("/v1/models", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [m["name"] for m in second["items"]] == ["c-model"]
    assert second["next_cursor"] is None


def test_patch_changes_settings_and_leaves_the_rest(client: TestClient) -> None:
    before = create_model(client)
    r = client.patch(
        "/v1/models/churn",
        json={
            "confidence_threshold": 0.75,
            "window": {"kind": "time", "size": "2h", "step": "30m"},
            "strict": False,
            "drift": {"alpha": 0.05, "correction": "bonferroni"},
            "options": {"audit_rate": 0.1},
        },
    )
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["confidence_threshold"] == 0.75
    assert after["window"] == {"kind": "time", "size": "2h", "step": "30m"}
    assert after["strict"] is False
    assert after["drift"]["alpha"] == 0.05
    assert after["drift"]["correction"] == "bonferroni"
    assert after["options"]["audit_rate"] == 0.1
    assert after["features"] == before["features"]
    assert after["labels"] == before["labels"]
    assert after["updated_at"] >= before["updated_at"]
    assert client.get("/v1/models/churn").json() == after

    # null clears the threshold; an empty patch changes nothing
    r = client.patch("/v1/models/churn", json={"confidence_threshold": None})
    assert r.json()["confidence_threshold"] is None
    r = client.patch("/v1/models/churn", json={})
    assert r.status_code == 200
    assert r.json()["strict"] is False


def test_patch_refuses_what_cannot_change(client: TestClient) -> None:
    create_model(client)
    for body, loc in [
        ({"name": "renamed"}, ["name"]),
        ({"features": []}, ["features"]),
        ({"window": {"kind": "count", "size": 10, "step": 3}}, ["window"]),
        ({"confidence_threshold": 2}, ["confidence_threshold"]),
        ({"status": "deleted"}, ["status"]),
    ]:
        r = client.patch("/v1/models/churn", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["details"][0]["loc"] == loc
    assert client.get("/v1/models/churn").json()["confidence_threshold"] == 0.6


def test_archive_keeps_data_refuses_traffic_and_restores(client: TestClient) -> None:
    create_model_with_reference(client)
    batch = predictions(5)
    assert (
        client.post("/v1/models/churn/predictions", json={"predictions": batch}).status_code == 202
    )

    r = client.delete("/v1/models/churn")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "archived"
    assert r.json()["archived_at"] is not None
    assert r.json()["records"] == 5
    # archiving twice is harmless
    assert client.delete("/v1/models/churn").json()["status"] == "archived"

    for path, body in [
        ("/v1/models/churn/predictions", {"predictions": predictions(2, seed=9)}),
        ("/v1/models/churn/feedback", {"feedback": [{"id": batch[0]["id"], "label": "churn"}]}),
        ("/v1/models/churn/reference", {"records": []}),
    ]:
        r = client.post(path, json=body)
        assert r.status_code == 409, (path, r.text)
        assert r.json()["error"]["code"] == "conflict"
        assert "archived" in r.json()["error"]["message"]
    # its data is still readable
    assert len(client.get("/v1/models/churn/predictions").json()["items"]) == 5
    assert client.get("/v1/models/churn/reference").status_code == 200

    r = client.patch("/v1/models/churn", json={"status": "active"})
    assert r.json()["status"] == "active"
    assert r.json()["archived_at"] is None
    r = client.post("/v1/models/churn/predictions", json={"predictions": predictions(2, seed=9)})
    assert r.status_code == 202
    assert client.get("/v1/models/churn").json()["records"] == 7


def test_patch_can_archive_too(client: TestClient) -> None:
    create_model(client)
    r = client.patch("/v1/models/churn", json={"status": "archived"})
    assert r.json()["status"] == "archived"
    assert r.json()["archived_at"] is not None
    r = client.post("/v1/models/churn/predictions", json=predictions(1)[0])
    assert r.status_code == 409
