"""What happens when an incident opens or closes, in the transaction that did it.

The queue opens the incident's drift ticket and alerting puts its message in
the outbox: called here one after the other, in the caller's unit of work, so
the incident, its ticket and its alert are committed together or not at all.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.alerting import rules
from app.drift.events import IncidentClosed, IncidentOpened
from app.settings import Settings
from exceptions_queue import service as queue


def incident_opened(session: Session, event: IncidentOpened, *, settings: Settings) -> None:
    """Alert on the incident, and open its drift ticket with the predictions to label."""
    rules.drift_opened(session, event, settings=settings)
    queue.open_drift_ticket(session, event=event)


def incident_closed(session: Session, event: IncidentClosed) -> None:
    """Resolve the incident's alert (its drift ticket stays for the reviewers)."""
    rules.drift_closed(session, event)
