"""Alerting's side of domain events: each runs in the transaction that raised the event.

So an incident and its alert (with one delivery per channel) commit together
or not at all: the transactional outbox.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.alerting import rules
from app.events import IncidentClosed, IncidentOpened, RetrainingDataReady, subscribe
from app.settings import get_settings


@subscribe(IncidentOpened)
def alert_incident_opened(session: Session, event: IncidentOpened) -> None:
    rules.drift_opened(session, event, settings=get_settings())


@subscribe(IncidentClosed)
def alert_incident_closed(session: Session, event: IncidentClosed) -> None:
    rules.drift_closed(session, event)


@subscribe(RetrainingDataReady)
def alert_training_data_ready(session: Session, event: RetrainingDataReady) -> None:
    rules.training_ready(session, event, settings=get_settings())
