"""The SQL of alerting's rules and API that is not the outbox's own (:mod:`app.alerting.outbox`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.alerting.tables import Alert
from exceptions_queue.tables import Ticket
from storage.tables import MonitoredModel


def data_quality_counts(session: Session, *, since: dt.datetime) -> Iterable[Any]:
    """(model id, created at, records with a problem) of each data-quality ticket since ``since``."""
    return session.execute(
        select(Ticket.model_id, Ticket.created_at, Ticket.count).where(
            Ticket.kind == "data_quality", Ticket.created_at >= since
        )
    )


def active_models(session: Session) -> Sequence[MonitoredModel]:
    """The monitored ML models that are not archived, oldest first."""
    return session.scalars(
        select(MonitoredModel).where(MonitoredModel.status == "active").order_by(MonitoredModel.id)
    ).all()


def firing_alerts(session: Session, *, rule: str) -> Sequence[Alert]:
    """The alerts of this rule that fire now."""
    return session.scalars(select(Alert).where(Alert.rule == rule, Alert.status == "firing")).all()
