"""The audit trail: one ``ticket_events`` row per transition, and who acts.

Every operation of the queue appends its rows with :func:`event_row`; the
payloads about leases and escalation are built here so they read the same in
every event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from exceptions_queue import states
from exceptions_queue.tables import Ticket

SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who acts: an API key's id (the lease holder) and how the audit trail names it."""

    key_id: str
    name: str


def event_row(
    ticket_id: int,
    action: states.Action,
    actor: str,
    from_status: states.Status | None,
    now: dt.datetime,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``ticket_events`` row; the new status follows from the transition table."""
    to = states.next_status(from_status, action)
    return {
        "ticket_id": ticket_id,
        "action": action,
        "actor": actor,
        "from_status": from_status,
        "to_status": to,
        "at": now,
        "payload": payload or {},
    }


def lease_until(expires: dt.datetime | None) -> dict[str, Any]:
    return {"lease_expires_at": expires.isoformat() if expires else None}


def lease_of(ticket: Ticket) -> dict[str, Any]:
    return lease_until(ticket.lease_expires_at)


def escalation(ticket: Ticket) -> dict[str, Any]:
    return {
        "abandon_count": ticket.abandon_count,
        "priority": ticket.priority,
        "escalated": states.is_escalated(ticket.abandon_count),
    }
