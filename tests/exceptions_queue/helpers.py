"""Queue test data: models, low-confidence traffic, actors, drift incidents."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.drift import flows
from app.drift.events import IncidentOpened
from app.settings import get_settings
from exceptions_queue import service
from exceptions_queue.tables import Ticket
from storage.base import utcnow
from storage.tables import MonitoredModel, Prediction
from tests.factories import create_model, predictions


def actor(name: str) -> service.Actor:
    return service.Actor(key_id=name, name=f"{name} (key)")


def seed(
    client: TestClient,
    n: int = 5,
    *,
    name: str = "churn",
    confidence: float = 0.3,
    prefix: str = "req",
    **options: Any,
) -> dict[str, Any]:
    """A model (no reference) with ``n`` low-confidence predictions, one ticket each."""
    model = (
        create_model(client, name=name, options=options)
        if options
        else create_model(client, name=name)
    )
    if n:
        post(client, n, name=name, confidence=confidence, prefix=prefix)
    return model


def post(
    client: TestClient,
    n: int,
    *,
    name: str = "churn",
    confidence: float = 0.3,
    prefix: str = "req",
    seed: int = 1,
) -> dict[str, Any]:
    r = client.post(
        f"/v1/models/{name}/predictions",
        json={"predictions": predictions(n, seed=seed, prefix=prefix, confidence=confidence)},
    )
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


def model_id(db: Database, name: str = "churn") -> int:
    with db.session(readonly=True) as s:
        return int(s.scalar(select(MonitoredModel.id).where(MonitoredModel.name == name)) or 0)


def prediction_ids(db: Database, name: str = "churn") -> list[int]:
    mid = model_id(db, name)
    with db.session(readonly=True) as s:
        return list(
            s.scalars(
                select(Prediction.id).where(Prediction.model_id == mid).order_by(Prediction.id)
            )
        )


def tickets(db: Database, **where: Any) -> list[Ticket]:
    with db.session(readonly=True) as s:
        stmt = select(Ticket).order_by(Ticket.id)
        for k, v in where.items():
            stmt = stmt.where(getattr(Ticket, k) == v)
        return list(s.scalars(stmt))


def open_incident(
    db: Database, *, name: str = "churn", incident_id: int = 1, sample: tuple[int, ...] = ()
) -> None:
    """What the drift engine does when an incident opens: app.drift.flows.incident_opened."""
    mid = model_id(db, name)
    now = utcnow()
    with db.session() as s:
        flows.incident_opened(
            s,
            IncidentOpened(
                model_id=mid,
                model_name=name,
                at=now,
                incident_id=incident_id,
                evaluation_id=10 + incident_id,
                severity="critical",
                drifted_features=("age",),
                window_start=now - dt.timedelta(hours=1),
                window_end=now,
                evaluation={"id": 10 + incident_id, "drifted": True},
                sample_prediction_ids=sample,
            ),
            settings=get_settings(),
        )


def pin_ingest_clock(monkeypatch: Any, *, minute: int = 59) -> dt.datetime:
    """Ingest's clock fixed in the last hour at ``minute``: a label budget's share of each
    batch depends on how much of the hour is left, so tests pin it."""
    from app.ingest import endpoints as ingest_endpoints

    at = (utcnow() - dt.timedelta(hours=1)).replace(minute=minute, second=0, microsecond=0)
    monkeypatch.setattr(ingest_endpoints, "utcnow", lambda: at)
    return at
