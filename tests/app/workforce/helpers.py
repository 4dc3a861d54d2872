"""Queue history at chosen times: tickets opened, claimed and finished by named reviewers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from exceptions_queue import service as queue
from storage.tables import MonitoredModel
from tests.factories import create_model


def make_model(client: TestClient, db: Database, name: str = "churn") -> dict[str, Any]:
    """A model created over HTTP, with its database id."""
    body = create_model(client, name=name)
    with db.session() as s:
        body["id"] = s.scalar(select(MonitoredModel.id).where(MonitoredModel.name == name))
    return body


def open_at(
    db: Database,
    model_id: int,
    at: dt.datetime,
    n: int,
    *,
    kind: str = "low_confidence",
    tag: str = "",
) -> None:
    with db.session() as s:
        queue.open_tickets(
            s,
            model_id=model_id,
            candidates=[
                queue.NewTicket(
                    kind=kind, group_key=f"t:{tag}{at.isoformat()}:{i}", reason="test", details={}
                )  # type: ignore[arg-type]
                for i in range(n)
            ],
            now=at,
        )


def work(db: Database, reviewer: str, claim_at: dt.datetime, minutes: float) -> int | None:
    """Claim the next ticket at ``claim_at`` and dismiss it ``minutes`` later."""
    actor = queue.Actor(key_id=reviewer, name=reviewer)
    with db.session() as s:
        t = queue.claim(s, actor=actor, now=claim_at, lease=dt.timedelta(hours=2))
        if t is None:
            return None
        tid, token = t.id, t.lease_token
    with db.session() as s:
        queue.dismiss(
            s,
            ticket_id=tid,
            actor=actor,
            lease_token=token,
            reason="ok",
            now=claim_at + dt.timedelta(minutes=minutes),
        )
    return tid
