"""app.ingest.flows: the rule settings cached from a reference are per database."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database, make_engine
from app.ingest import flows
from app.main import create_app
from storage.tables import MonitoredModel, Reference
from tests.conftest import ADMIN_SECRET, fresh_database, make_settings
from tests.factories import create_model, reference_records


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
