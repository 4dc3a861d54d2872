"""Undoing a resolution or dismissal (within the reopen window): reopen.

Its labels are retracted (labels they had replaced are current again), open
follow-ups (a second review not yet claimed) are cancelled, and the reviewer
holds the ticket again; the history keeps both the resolution and the undo.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy.orm import Session

from exceptions_queue import repository, states
from exceptions_queue.errors import TicketConflict, TicketNotFound
from exceptions_queue.events import SYSTEM, Actor, event_row, lease_of
from exceptions_queue.tables import Ticket

# Resolutions that change other reviewers' labels; undoing them would unpick QC.
FINAL = ("second_review", "adjudication")


def reopen(
    session: Session,
    *,
    ticket_id: int,
    actor: Actor,
    now: dt.datetime,
    lease: dt.timedelta = states.DEFAULT_LEASE,
) -> Ticket:
    """Undo a resolution or dismissal: its reviewer holds the ticket again.

    Only within :data:`states.REOPEN_WINDOW`, and not once a second review of it
    is under way. Its labels are retracted (labels they had replaced are current
    again); the history keeps both the resolution and the undo.
    """
    before = repository.holding(session, ticket_id)
    if before is None:
        raise TicketNotFound(f"no ticket {ticket_id}")
    busy = repository.followups_in_progress(session, subject_ticket_id=ticket_id)
    if busy:
        raise TicketConflict(
            f"ticket {ticket_id} is already in second review (ticket {busy[0].id}): "
            "it can no longer be reopened",
            details=[{"reason": "in_review", "status": busy[0].status}],
        )
    ticket = repository.reopen(
        session,
        ticket_id=ticket_id,
        key_id=actor.key_id,
        actor=actor.name,
        lease_token=secrets.token_hex(16),
        lease=lease,
        now=now,
        final_kinds=FINAL,
    )
    if ticket is None:
        raise _reopen_refused(session, ticket_id=ticket_id, actor=actor, now=now)
    retracted = repository.retract_labels(session, ticket_id=ticket.id)
    cancelled = repository.cancel_open_followups(
        session,
        subject_ticket_id=ticket.id,
        now=now,
        reason=f"ticket {ticket.id} was reopened",
    )
    repository.insert_events(
        session, _reopen_events(ticket, before.status, actor, retracted, cancelled, now)
    )
    return ticket


def _reopen_events(
    ticket: Ticket,
    before: states.Status,
    actor: Actor,
    retracted: list[int],
    cancelled: list[Ticket],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """The reopen itself, and the cancellation of each follow-up it made pointless."""
    reopened = {"retracted_labels": retracted, **lease_of(ticket)}
    return [
        event_row(ticket.id, "reopen", actor.name, before, now, reopened),
        *(
            event_row(
                c.id, "cancel", SYSTEM, "open", now, {"reason": f"ticket {ticket.id} reopened"}
            )
            for c in cancelled
        ),
    ]


def _reopen_refused(
    session: Session, *, ticket_id: int, actor: Actor, now: dt.datetime
) -> TicketNotFound | TicketConflict:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return TicketNotFound(f"no ticket {ticket_id}")
    if ticket.status not in states.FINISHED:
        why, message = "not_finished", f"ticket {ticket_id} is {ticket.status}: nothing to undo"
    elif ticket.kind in FINAL:
        why, message = "final", f"a {ticket.kind} resolution is final: it cannot be reopened"
    elif ticket.resolved_by != actor.key_id:
        why, message = "not_resolver", "only the reviewer who finished a ticket may reopen it"
    else:
        minutes = int(states.REOPEN_WINDOW.total_seconds() // 60)
        why, message = (
            "window_passed",
            f"ticket {ticket_id} was finished more than {minutes} minutes ago: it can no longer "
            "be reopened",
        )
    return TicketConflict(message, details=[{"reason": why, "status": ticket.status}])
