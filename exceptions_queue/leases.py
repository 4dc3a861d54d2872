"""Reading the queue and holding tickets: claim, heartbeat, release, the lease reaper.

A claim takes the highest-priority, oldest waiting ticket with a fresh lease in
one guarded statement (:mod:`exceptions_queue.repository`); a guard that finds
no row is explained (not yours, finished, lease expired) by :func:`lost`.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy.orm import Session

from exceptions_queue import repository, states
from exceptions_queue.errors import TicketConflict, TicketNotFound
from exceptions_queue.events import SYSTEM, Actor, escalation, event_row, lease_of, lease_until
from exceptions_queue.tables import Ticket


def get(session: Session, *, ticket_id: int) -> Ticket:
    """The ticket with this id, or a 404."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(f"no ticket {ticket_id}: list them with GET /v1/tickets")
    return ticket


def lost(
    session: Session, *, ticket_id: int, actor: Actor, lease_token: str | None, now: dt.datetime
) -> TicketNotFound | TicketConflict:
    held = repository.holding(session, ticket_id)
    if held is None:
        return TicketNotFound(f"no ticket {ticket_id}")
    reason = states.conflict_reason(held, actor_key=actor.key_id, lease_token=lease_token, now=now)
    return TicketConflict(
        states.CONFLICT_MESSAGES[reason].format(id=ticket_id, status=held.status),
        details=[{"reason": reason, "status": held.status}],
    )


def claim(
    session: Session,
    *,
    actor: Actor,
    now: dt.datetime,
    lease: dt.timedelta = states.DEFAULT_LEASE,
    model_id: int | None = None,
    kind: str | None = None,
) -> Ticket | None:
    """Claim the highest-priority, oldest waiting ticket with a fresh lease; ``None`` if none."""
    ticket = repository.claim_next(
        session,
        key_id=actor.key_id,
        actor=actor.name,
        lease_token=secrets.token_hex(16),
        lease=lease,
        now=now,
        claim_payload=lease_until(now + lease),
        model_id=model_id,
        kind=kind,
    )
    if ticket is None or repository.claim_event_written(session, ticket, now=now):
        return ticket
    events = []
    if ticket.last_abandoned_at == now:  # it took over an expired lease
        expired = {"holder": ticket.last_abandoned_by, **escalation(ticket)}
        events.append(event_row(ticket.id, "expire", SYSTEM, "claimed", now, expired))
    events.append(event_row(ticket.id, "claim", actor.name, "open", now, lease_of(ticket)))
    repository.insert_events(session, events)
    return ticket


def heartbeat(
    session: Session,
    *,
    ticket_id: int,
    actor: Actor,
    lease_token: str | None,
    now: dt.datetime,
    lease: dt.timedelta = states.DEFAULT_LEASE,
) -> Ticket:
    """Extend the holder's lease to ``now + lease``."""
    ticket = repository.extend_lease(
        session,
        ticket_id=ticket_id,
        key_id=actor.key_id,
        lease_token=lease_token,
        lease=lease,
        now=now,
    )
    if ticket is None:
        raise lost(session, ticket_id=ticket_id, actor=actor, lease_token=lease_token, now=now)
    repository.insert_events(
        session, [event_row(ticket.id, "heartbeat", actor.name, "claimed", now, lease_of(ticket))]
    )
    return ticket


def release(
    session: Session, *, ticket_id: int, actor: Actor, lease_token: str | None, now: dt.datetime
) -> Ticket:
    """Give a held ticket back to the queue (counts towards escalation)."""
    ticket = repository.release(
        session, ticket_id=ticket_id, key_id=actor.key_id, lease_token=lease_token, now=now
    )
    if ticket is None:
        raise lost(session, ticket_id=ticket_id, actor=actor, lease_token=lease_token, now=now)
    repository.insert_events(
        session,
        [event_row(ticket.id, "release", actor.name, "claimed", now, escalation(ticket))],
    )
    return ticket


def expire_leases(session: Session, *, now: dt.datetime, limit: int = 500) -> int:
    """Return tickets whose lease expired to the queue (the reaper loop's step)."""
    tickets = repository.expire_leases(session, now=now, limit=limit)
    repository.insert_events(
        session,
        [
            event_row(
                t.id,
                "expire",
                SYSTEM,
                "claimed",
                now,
                {"holder": t.last_abandoned_by, **escalation(t)},
            )
            for t in tickets
        ],
    )
    return len(tickets)
