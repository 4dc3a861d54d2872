"""The queue's side of domain events: a drift incident opens a drift ticket.

Runs in the transaction that opened the incident (app.events), so the incident
and its ticket are committed together or not at all.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.events import IncidentOpened, subscribe
from exceptions_queue import service


@subscribe(IncidentOpened)
def open_drift_ticket(session: Session, event: IncidentOpened) -> None:
    service.open_drift_ticket(session, event=event)
