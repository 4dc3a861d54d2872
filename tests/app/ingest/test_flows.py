"""app.ingest.flows: what ingest caches (rule settings per database, the model it
validates against) and how a change of the model reaches it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.catalog import service as catalog
from app.db import Database, make_engine
from app.ingest import flows, store
from app.ingest.parse import decode_batch
from app.ingest.store import ModelChanged
from app.main import create_app
from app.settings import Settings
from storage.base import utcnow
from storage.tables import BlockCounts, MonitoredModel, Reference
from tests.conftest import ADMIN_SECRET, fresh_database, make_settings
from tests.factories import (
    create_model,
    create_model_with_reference,
    predictions,
    reference_records,
)


def test_rule_settings_are_cached_per_database(
    _templates: dict[str, str],  # noqa: PT019 (its value is used: the migrated template)
    tmp_path: Path,
) -> None:
    """Two databases whose first reference has the same id but not the same ranges."""
    ranges = {}
    for folder, seed in (("one", 0), ("two", 7)):
        (tmp_path / folder).mkdir()
        with fresh_database("sqlite", _templates, tmp_path / folder) as url:
            db = Database(make_engine(url))
            try:
                app = create_app(make_settings(url), database=db)
                headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}
                with TestClient(app, headers=headers) as client:
                    create_model(client)
                    records = reference_records(seed=seed)
                    r = client.post("/v1/models/churn/reference", json={"records": records})
                    assert r.status_code == 201, r.text
                with db.session(readonly=True) as session:
                    model = session.scalars(select(MonitoredModel)).one()
                    reference = session.get(Reference, model.reference_id)
                    assert reference is not None and reference.id == 1
                    age = reference.summary["age"]
                    ranges[folder] = (flows.rule_config(session, model).ranges["age"], age)
            finally:
                db.dispose()
    for cached, summary in ranges.values():
        assert cached == (summary["min"], summary["max"])
    assert ranges["one"][0] != ranges["two"][0]


# --------------------------------------------------------------------------- the cached model
URL = "/v1/models/churn/predictions"


def _post(client: TestClient, records: list[dict[str, Any]], **kw: Any) -> Any:
    return client.post(URL, json={"predictions": records}, **kw)


def test_a_model_cached_by_ingest_is_read_again_after_every_change(
    client: TestClient, db: Database
) -> None:
    """Ingest keeps the model it validated against; every change of the model reaches it."""
    create_model_with_reference(client)  # confidence threshold 0.6
    low = 0.5
    r = _post(client, predictions(10, seed=1, confidence=low))
    assert r.json() == {"accepted": 10, "duplicates": 0, "exceptions": 10}
    # a new threshold: the cached model is stale, the batch is validated again
    assert client.patch("/v1/models/churn", json={"confidence_threshold": 0.4}).status_code == 200
    r = _post(client, predictions(10, seed=2, confidence=low))
    assert r.json() == {"accepted": 10, "duplicates": 0, "exceptions": 0}
    # a new reference: the next batch is counted against it
    r = client.post("/v1/models/churn/reference", json={"records": reference_records(seed=5)})
    assert r.status_code == 201, r.text
    assert _post(client, predictions(10, seed=3)).status_code == 202
    with db.session(readonly=True) as session:
        reference_id = session.scalars(select(MonitoredModel.reference_id)).one()
        newest = session.scalars(
            select(BlockCounts.reference_id).order_by(BlockCounts.id.desc()).limit(1)
        ).one()
    assert newest == reference_id
    # archived: refused, and accepted again once restored
    assert client.delete("/v1/models/churn").status_code == 200
    r = _post(client, predictions(3, seed=4))
    assert r.status_code == 409 and "archived" in r.json()["error"]["message"]
    assert client.patch("/v1/models/churn", json={"status": "active"}).status_code == 200
    assert _post(client, predictions(3, seed=4)).json()["accepted"] == 3
    assert client.get("/v1/models/churn").json()["records"] == 33


def test_a_revoked_key_is_refused_while_the_model_is_cached(client: TestClient) -> None:
    create_model_with_reference(client)
    r = client.post("/v1/keys", json={"name": "deployed", "scopes": ["ingest"]})
    key = {"Authorization": f"Bearer {r.json()['secret']}"}
    assert _post(client, predictions(5, seed=1), headers=key).status_code == 202
    assert client.delete(f"/v1/keys/{r.json()['id']}").status_code == 204
    refused = _post(client, predictions(5, seed=2), headers=key)
    assert refused.status_code == 401, refused.text
    # an invalid batch from a revoked key: the 401 comes first, as before the cache
    bad = predictions(1, seed=3)
    bad[0]["confidence"] = 7
    assert _post(client, bad, headers=key).status_code == 401
    assert client.get("/v1/models/churn").json()["records"] == 5


def test_a_reservation_for_a_changed_model_reserves_nothing_on_postgres(
    client: TestClient, db: Database, settings: Settings
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite numbers its rows inside the write transaction")
    create_model_with_reference(client)
    with db.session(readonly=True) as session:
        stale = catalog.active_model(session, "churn")
    assert client.patch("/v1/models/churn", json={"confidence_threshold": 0.5}).status_code == 200
    raw = json.dumps({"predictions": predictions(5)}).encode()
    batch = decode_batch(raw, stale, now=utcnow(), settings=settings)
    assert batch is not None
    with pytest.raises(ModelChanged):
        store.reserve(db, stale, batch, list(range(5)))
    assert client.get("/v1/models/churn").json()["records"] == 0
