"""app.catalog.service: cached model names are per database."""

from __future__ import annotations

from pathlib import Path

from app.catalog import service as catalog
from app.db import Database, make_engine
from app.schemas import ModelCreate
from tests.conftest import fresh_database


def test_model_names_are_cached_per_database(
    _templates: dict[str, str],  # noqa: PT019 (its value is used: the migrated template)
    tmp_path: Path,
) -> None:
    """Two databases whose first model has the same id but not the same name."""
    names = {}
    for folder, name in (("one", "churn"), ("two", "fraud")):
        (tmp_path / folder).mkdir()
        with fresh_database("sqlite", _templates, tmp_path / folder) as url:
            db = Database(make_engine(url))
            try:
                with db.session() as session:
                    model = catalog.create_model(
                        session,
                        body=ModelCreate.model_validate(
                            {
                                "name": name,
                                "task": "classification",
                                "features": [{"name": "x", "type": "numerical"}],
                                "labels": ["a", "b"],
                            }
                        ),
                    )
                with db.session(readonly=True) as session:
                    names[folder] = catalog.model_names(session, [model.id])
            finally:
                db.dispose()
    assert names == {"one": {1: "churn"}, "two": {1: "fraud"}}
