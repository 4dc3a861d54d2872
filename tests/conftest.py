"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

The schema is built once per backend by the real migrations (``alembic upgrade
head``) into a template; each test gets its own copy (a file copy on SQLite,
``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), so tests never see each other's
rows and nothing is cleaned up by DELETE.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from app.db import Database, make_engine
from app.main import create_app
from app.ops import migrations
from app.settings import Settings

ADMIN_SECRET = "dd_test_admin_secret_0123456789"
PG_ENV = "DRIFTDESK_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgres"]


def pg_base_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        return None
    return Settings(database_url=url, _env_file=None).database_url  # type: ignore[call-arg]


def _pg_admin(url: str) -> psycopg.Connection[Any]:
    u = make_url(url)
    return psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password or None,
        dbname=u.database or "postgres",
        autocommit=True,
    )


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A migrated database per backend, to copy for each test."""
    made: dict[str, str] = {}
    folder = tmp_path_factory.mktemp("templates")
    sqlite_url = f"sqlite:///{folder / 'template.db'}"
    migrations.upgrade(sqlite_url)
    made["sqlite"] = str(folder / "template.db")
    base = pg_base_url()
    name = None
    if base:
        name = f"dd_tpl_{uuid.uuid4().hex[:10]}"
        with _pg_admin(base) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        migrations.upgrade(make_url(base).set(database=name).render_as_string(hide_password=False))
        made["postgres"] = name
    yield made
    if base and name:
        with _pg_admin(base) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(
    backend: str, templates: dict[str, str], folder: Path, *, prefix: str = "dd_t"
) -> Iterator[str]:
    """A copy of the migrated template: a file in ``folder``, or a PostgreSQL database."""
    if backend == "sqlite":
        target = folder / "driftdesk.db"
        shutil.copyfile(templates["sqlite"], target)
        yield f"sqlite:///{target}"
        return
    base = pg_base_url()
    if not base:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        )
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _pg_admin(base) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{templates["postgres"]}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with _pg_admin(base) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, _templates: dict[str, str], tmp_path: Path
) -> Iterator[str]:
    """A fresh, migrated database URL; parametrised over SQLite and PostgreSQL."""
    with fresh_database(request.param, _templates, tmp_path) as url:
        yield url


def make_settings(db_url: str, **overrides: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=db_url,
        bootstrap_admin_key=ADMIN_SECRET,
        sqlite_synchronous="NORMAL",
        log_format="text",
        **overrides,
    )


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(make_engine(settings.database_url, sqlite_synchronous="NORMAL"))
    yield database
    database.dispose()


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The app over HTTP (in-process), signed in as the bootstrap admin."""
    app = create_app(settings, database=db)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_SECRET}"}) as c:
        yield c
