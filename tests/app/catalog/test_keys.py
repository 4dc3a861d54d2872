"""/v1/keys: creation (secret shown once, hashed at rest), listing, immediate revocation."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.main import create_app
from app.settings import Settings
from storage.tables import ApiKey
from tests.conftest import ADMIN_SECRET
from tests.factories import make_key


def test_create_returns_the_secret_once_and_stores_only_its_hash(
    client: TestClient, db: Database
) -> None:
    r = client.post("/v1/keys", json={"name": "reviewer-ana", "scopes": ["review", "review"]})
    assert r.status_code == 201, r.text
    created = r.json()
    assert set(created) >= {"id", "name", "scopes", "secret"}
    assert created["name"] == "reviewer-ana"
    assert created["scopes"] == ["review"]
    secret = created["secret"]
    assert len(secret) >= 40

    listed = client.get("/v1/keys").json()["items"]
    mine = next(k for k in listed if k["id"] == created["id"])
    assert "secret" not in mine
    assert mine["revoked_at"] is None
    assert all("secret" not in k and "secret_hash" not in k for k in listed)

    with db.session(readonly=True) as session:
        row = session.scalars(select(ApiKey).where(ApiKey.id == created["id"])).one()
        assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        stored = [str(getattr(row, c.key)) for c in ApiKey.__table__.columns]
        assert not any(secret in value for value in stored)

    # the secret works, with its scope only
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/models", headers=headers).status_code == 200
    assert client.get("/v1/keys", headers=headers).status_code == 403


def test_bootstrap_admin_key_exists_and_is_admin(client: TestClient) -> None:
    items = client.get("/v1/keys").json()["items"]
    assert [(k["name"], k["scopes"]) for k in items] == [("bootstrap-admin", ["admin"])]


def test_create_validates_name_and_scopes(client: TestClient) -> None:
    cases = [
        ({"name": "x", "scopes": []}, ["scopes"]),
        ({"name": "x", "scopes": ["superuser"]}, ["scopes", 0]),
        ({"name": "x", "scopes": "admin"}, ["scopes"]),
        ({"name": "", "scopes": ["review"]}, ["name"]),
        ({"name": "x" * 201, "scopes": ["review"]}, ["name"]),
        ({"scopes": ["review"]}, ["name"]),
        ({"name": "x", "scopes": ["review"], "secret": "mine"}, ["secret"]),
    ]
    for body, loc in cases:
        r = client.post("/v1/keys", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["details"][0]["loc"] == loc, body
    assert len(client.get("/v1/keys").json()["items"]) == 1


def test_list_is_paginated_with_a_cursor(client: TestClient) -> None:
    ids = {
        client.post("/v1/keys", json={"name": f"k{i}", "scopes": ["ingest"]}).json()["id"]
        for i in range(4)
    }
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/keys", params=params).json()
        pages += 1
        seen += [k["id"] for k in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert ids < set(seen)


def test_bad_cursors_are_422(client: TestClient) -> None:
    # garbage, base64 of a non-object, and a cursor of another list (models are paged by name)
    client.post(
        "/v1/models",
        json={"name": "a", "task": "regression", "features": [{"name": "x", "type": "numerical"}]},
    )
    client.post(
        "/v1/models",
        json={"name": "b", "task": "regression", "features": [{"name": "x", "type": "numerical"}]},
    )
    models_cursor = client.get("/v1/models", params={"limit": 1}).json()["next_cursor"]
    assert models_cursor
    for cursor in (
        "!!!",
        "WzEsMl0",
        "bnVsbA",
        models_cursor,
        "eyJpZCI6IDV9",
    ):  # [1,2] null {"id": 5}
        r = client.get("/v1/keys", params={"cursor": cursor})
        assert r.status_code == 422, (cursor, r.text)
        assert r.json()["error"]["details"][0]["loc"] == ["query", "cursor"]


def test_revocation_takes_effect_at_once(client: TestClient) -> None:
    r = client.post("/v1/keys", json={"name": "model-a", "scopes": ["ingest", "review"]})
    key_id, secret = r.json()["id"], r.json()["secret"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/models", headers=headers).status_code == 200

    r = client.delete(f"/v1/keys/{key_id}")
    assert r.status_code == 204
    assert r.content == b""
    r = client.get("/v1/models", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"

    # revoking twice is fine; the listing shows when it was revoked
    assert client.delete(f"/v1/keys/{key_id}").status_code == 204
    listed = next(k for k in client.get("/v1/keys").json()["items"] if k["id"] == key_id)
    assert listed["revoked_at"] is not None


def test_revoke_unknown_key_is_404(client: TestClient) -> None:
    r = client.delete("/v1/keys/0123456789ab")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_an_admin_can_revoke_the_bootstrap_key_with_another_admin_key(client: TestClient) -> None:
    other = make_key(client, "admin", name="second-admin")
    boot = next(k for k in client.get("/v1/keys").json()["items"] if k["name"] == "bootstrap-admin")
    assert client.delete(f"/v1/keys/{boot['id']}", headers=other).status_code == 204
    r = client.get("/v1/keys", headers={"Authorization": f"Bearer {ADMIN_SECRET}"})
    assert r.status_code == 401
    assert client.get("/v1/keys", headers=other).status_code == 200


def test_a_revoked_bootstrap_key_stays_revoked_after_a_restart(
    client: TestClient, settings: Settings, db: Database
) -> None:
    boot = client.get("/v1/keys").json()["items"][0]
    assert client.delete(f"/v1/keys/{boot['id']}").status_code == 204  # its own last admin key
    # the same DRIFTDESK_BOOTSTRAP_ADMIN_KEY at the next start: the server starts, the key
    # does not come back
    with TestClient(create_app(settings, database=db)) as again:
        r = again.get("/v1/keys", headers={"Authorization": f"Bearer {ADMIN_SECRET}"})
        assert r.status_code == 401
        assert again.get("/healthz").status_code == 200
    with db.session(readonly=True) as session:
        assert len(session.scalars(select(ApiKey)).all()) == 1
