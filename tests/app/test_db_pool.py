"""Pooled PostgreSQL connections that the server closed: pinged when idle, else replaced on failure."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import app.db
from app.db import Database, make_engine
from tests.conftest import _pg_admin, pg_base_url


def _postgres_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the idle ping guards PostgreSQL connections: SQLite has no server to lose")


def _backend_pid(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(text("SELECT pg_backend_pid()")))


def _terminate(pid: int) -> None:
    base = pg_base_url()
    assert base is not None
    with _pg_admin(base) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_an_idle_connection_the_server_closed_is_replaced_unseen(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(db_url)
    monkeypatch.setattr(app.db, "PING_AFTER_IDLE_SECONDS", 0.0)  # every checkout is "idle"
    db = Database(make_engine(db_url, pool_size=1))
    try:
        first = _backend_pid(db)
        _terminate(first)
        assert _backend_pid(db) != first  # no error: the ping found it dead
    finally:
        db.dispose()


def test_a_recently_used_connection_is_not_pinged_and_one_failure_renews_the_pool(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(db_url)
    monkeypatch.setattr(app.db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    db = Database(make_engine(db_url, pool_size=2))
    try:
        first = _backend_pid(db)
        _terminate(first)
        with pytest.raises(OperationalError):  # not pinged: the request that meets it fails
            _backend_pid(db)
        assert _backend_pid(db) != first  # and the pool was renewed for the next one
    finally:
        db.dispose()
