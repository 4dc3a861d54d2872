"""The ticket state machine, as data: statuses, actions, and what each action may do.

Pure: no clock, no database. The repository turns each allowed transition into
one guarded ``UPDATE`` (compare-and-set on status, holder and lease token); this
module says which transitions exist, how tickets are prioritised and when they
are due, and — when a guarded update finds no row — why the caller lost.

>>> next_status("open", "claim")
'claimed'
>>> next_status("claimed", "expire")
'open'
>>> next_status("resolved", "claim")
Traceback (most recent call last):
...
exceptions_queue.states.IllegalTransition: cannot claim a resolved ticket
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, get_args

Status = Literal["open", "claimed", "resolved", "dismissed"]
Action = Literal[
    "open", "claim", "heartbeat", "release", "expire", "resolve", "dismiss", "reopen", "cancel"
]
Kind = Literal[
    "drift",
    "adjudication",
    "feedback_mismatch",
    "data_quality",
    "second_review",
    "low_confidence",
    "audit",
]

STATUSES: tuple[Status, ...] = get_args(Status)
KINDS: tuple[Kind, ...] = get_args(Kind)
ACTIONS: tuple[Action, ...] = get_args(Action)
FINISHED: frozenset[Status] = frozenset({"resolved", "dismissed"})
# A ticket in one of these states is waiting for, or with, a reviewer.
ACTIVE: frozenset[Status] = frozenset({"open", "claimed"})

# (from, action) -> to. ``None`` as the source is creation.
TRANSITIONS: dict[tuple[Status | None, Action], Status] = {
    (None, "open"): "open",
    ("open", "claim"): "claimed",
    # a claim also takes a ticket whose lease has expired (before the reaper does)
    ("claimed", "claim"): "claimed",
    ("claimed", "heartbeat"): "claimed",
    ("claimed", "release"): "open",
    ("claimed", "expire"): "open",
    ("claimed", "resolve"): "resolved",
    ("claimed", "dismiss"): "dismissed",
    # undo by the reviewer who finished it, within REOPEN_WINDOW: they hold it again
    ("resolved", "reopen"): "claimed",
    ("dismissed", "reopen"): "claimed",
    # the system withdraws a follow-up that no longer applies (its subject was reopened)
    ("open", "cancel"): "dismissed",
}

# Actions that give the ticket up without finishing it: counted towards escalation.
ABANDONING: frozenset[Action] = frozenset({"release", "expire"})


class IllegalTransition(ValueError):
    """An action the state machine does not allow from a status."""


def next_status(status: Status | None, action: Action) -> Status:
    """The status ``action`` leads to from ``status``, or :class:`IllegalTransition`."""
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        article = "an" if (status or "")[:1] in "aeiou" else "a"
        raise IllegalTransition(f"cannot {action} {article} {status} ticket") from None


def sources(action: Action) -> frozenset[Status]:
    """Every status ``action`` can start from.

    >>> sorted(sources("resolve"))
    ['claimed']
    >>> sorted(sources("reopen"))
    ['dismissed', 'resolved']
    """
    return frozenset(s for (s, a) in TRANSITIONS if a == action and s is not None)


# --------------------------------------------------------------------------- priority, SLA
# Higher is served first: a drift incident outranks everything, an audit nothing.
PRIORITY: dict[Kind, int] = {
    "drift": 100,
    "adjudication": 90,
    "feedback_mismatch": 80,
    "data_quality": 60,
    "second_review": 50,
    "low_confidence": 40,
    "audit": 20,
}

# SLA per priority band: the due time is creation plus this.
SLA_BY_PRIORITY: tuple[tuple[int, dt.timedelta], ...] = (
    (100, dt.timedelta(hours=4)),
    (80, dt.timedelta(hours=24)),
    (50, dt.timedelta(hours=48)),
    (40, dt.timedelta(hours=72)),
    (0, dt.timedelta(days=7)),
)

# After every ESCALATE_AFTER abandonments (released, or lease expired) a ticket
# moves up by ESCALATION_STEP: what nobody wants to decide must not sink forever.
ESCALATE_AFTER = 3
ESCALATION_STEP = 15

REOPEN_WINDOW = dt.timedelta(minutes=10)
DEFAULT_LEASE = dt.timedelta(minutes=15)


def priority_of(kind: str) -> int:
    """The base priority of a kind (0 for a kind this version does not know)."""
    return next((p for k, p in PRIORITY.items() if k == kind), 0)


def sla(priority: int) -> dt.timedelta:
    """The SLA of a priority: the band at or below it.

    >>> sla(PRIORITY["drift"])
    datetime.timedelta(seconds=14400)
    >>> sla(PRIORITY["audit"])
    datetime.timedelta(days=7)
    """
    for floor, span in SLA_BY_PRIORITY:
        if priority >= floor:
            return span
    return SLA_BY_PRIORITY[-1][1]


def due_at(kind: Kind, created_at: dt.datetime) -> dt.datetime:
    return created_at + sla(PRIORITY[kind])


def escalated_priority(priority: int, abandon_count: int) -> int:
    """The priority after one more abandonment (``abandon_count`` already includes it).

    >>> [escalated_priority(40, n) for n in (1, 2, 3, 4)]
    [40, 40, 55, 40]
    """
    return priority + ESCALATION_STEP if abandon_count % ESCALATE_AFTER == 0 else priority


def is_escalated(abandon_count: int) -> bool:
    return abandon_count >= ESCALATE_AFTER


# --------------------------------------------------------------------------- conflicts
ConflictReason = Literal["finished", "not_holder", "not_claimed", "lease_expired", "stale_token"]


@dataclass(frozen=True)
class Holding:
    """What a ticket looked like when a guarded update on it found no row."""

    status: Status
    claimed_by: str | None
    lease_token: str | None
    lease_expires_at: dt.datetime | None


def conflict_reason(
    row: Holding, *, actor_key: str, lease_token: str | None, now: dt.datetime
) -> ConflictReason:
    """Why a holder-only action (resolve, dismiss, release, heartbeat) was refused.

    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> held = Holding("claimed", "ana", "tok", t + dt.timedelta(minutes=5))
    >>> conflict_reason(held, actor_key="bob", lease_token=None, now=t)
    'not_holder'
    >>> conflict_reason(held, actor_key="ana", lease_token="old", now=t)
    'stale_token'
    >>> conflict_reason(held, actor_key="ana", lease_token="tok", now=t + dt.timedelta(hours=1))
    'lease_expired'
    """
    if row.status in FINISHED:
        return "finished"
    if row.status != "claimed":
        return "not_claimed"
    if row.claimed_by != actor_key:
        return "not_holder"
    if row.lease_expires_at is not None and row.lease_expires_at <= now:
        return "lease_expired"
    if lease_token is not None and lease_token != row.lease_token:
        return "stale_token"
    # the guard failed, yet nothing explains it: another action won the race just now
    return "not_holder"


CONFLICT_MESSAGES: dict[ConflictReason, str] = {
    "finished": "ticket {id} is already {status}: nothing more can be done to it",
    "not_claimed": "ticket {id} is not claimed: claim it first (POST /v1/tickets/claim)",
    "not_holder": "ticket {id} is held by another reviewer",
    "lease_expired": "your lease on ticket {id} expired: claim it again to work on it",
    "stale_token": "lease token does not match ticket {id}'s current lease (it was claimed again)",
}
