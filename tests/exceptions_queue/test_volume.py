"""The hourly ticket counters: partial rows a transaction each, summed by readers, merged."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.catalog import service as catalog
from app.db import Database
from exceptions_queue import repository, service
from exceptions_queue.tables import TicketVolume
from storage.sql import LockKey, advisory_lock
from tests.factories import create_model

H1 = dt.datetime(2026, 12, 3, 10, tzinfo=dt.UTC)
H2 = H1 + dt.timedelta(hours=1)
H0 = H1 - dt.timedelta(hours=1)  # before the hours compacted


def _model_id(client: TestClient, db: Database) -> int:
    create_model(client)
    with db.session(readonly=True) as session:
        return catalog.active_model(session, "churn").id


def _add(db: Database, model_id: int, hour: dt.datetime, **counts: int) -> None:
    with db.session() as session:
        repository.add_volume(
            session, model_id=model_id, hour=hour, opened=counts, suppressed={"low_confidence": 1}
        )


def _rows(db: Database) -> list[tuple[dt.datetime, str, int, int]]:
    with db.session(readonly=True) as session:
        v = TicketVolume.__table__
        return [
            (h, str(k), int(o), int(s))
            for h, k, o, s in session.execute(
                select(v.c.hour, v.c.kind, v.c.opened, v.c.suppressed).order_by(v.c.hour, v.c.kind)
            )
        ]


def test_partial_rows_are_summed_by_readers_and_merged_without_loss(
    client: TestClient, db: Database
) -> None:
    model_id = _model_id(client, db)
    for n in (3, 4, 5):  # three transactions in the first hour
        _add(db, model_id, H1, low_confidence=n, audit=1)
    _add(db, model_id, H2, low_confidence=7)
    with db.session(readonly=True) as session:
        opened = sorted(repository.opened_per_hour(session, model_id, since=H1))
        suppressed = repository.suppressed_counts(session, model_id=model_id)
    assert opened == [(H1, 15), (H2, 7)]  # 3 + 4 + 5 low-confidence, 3 audits
    assert sorted(suppressed, key=lambda r: (r[2], r[1])) == [
        (model_id, "low_confidence", H1, 3),
        (model_id, "low_confidence", H2, 1),
    ]
    assert len(_rows(db)) == 7
    with db.session() as session:
        removed = service.compact_volume(session, since=H1)
    assert removed == 4  # 3 low_confidence and 3 audit rows of H1 become one each
    assert _rows(db) == [
        (H1, "audit", 3, 0),
        (H1, "low_confidence", 12, 3),
        (H2, "low_confidence", 7, 1),
    ]
    # merged again: nothing to do; a new row of the same hour is merged next time
    _add(db, model_id, H1, low_confidence=1)
    with db.session() as session:
        assert service.compact_volume(session, since=H1) == 1
    assert (H1, "low_confidence", 13, 4) in _rows(db)
    # an hour before ``since`` is left as it is (its readers sum it all the same)
    for n in (1, 2):
        _add(db, model_id, H0, low_confidence=n)
    with db.session() as session:
        assert service.compact_volume(session, since=H1) == 0
        assert service.volume_to_compact(session, since=H0) == [(model_id, H0, "low_confidence")]
    assert sorted(r for r in _rows(db) if r[0] == H0) == [
        (H0, "low_confidence", 1, 1),
        (H0, "low_confidence", 2, 1),
    ]


def test_one_process_compacts_at_a_time_on_postgres(client: TestClient, db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite has one writer at a time")
    model_id = _model_id(client, db)
    for n in (1, 2):
        _add(db, model_id, H1, low_confidence=n)
    with db.session() as holder:
        assert advisory_lock(holder, LockKey.TICKET_VOLUME, wait=True)
        with db.session() as session:
            assert service.compact_volume(session, since=H1) == 0
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(TicketVolume)) == 2
    with db.session() as session:
        assert service.compact_volume(session, since=H1) == 1
