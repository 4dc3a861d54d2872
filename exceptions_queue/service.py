"""The exception queue's operations, in one place for callers.

Keyword-only functions over the caller's session (the unit of work: they never
commit). Every transition goes through one guarded statement of
:mod:`exceptions_queue.repository` and appends a ``ticket_events`` row; a guard
that finds no row is explained (not yours, finished, lease expired) as a
:class:`~exceptions_queue.errors.TicketConflict`. Each job lives in its module:

- :mod:`~exceptions_queue.opening`: open tickets (rules, drift, feedback), budgets,
  data-quality groups (merged, or deferred when the model's ticket lock is held);
- :mod:`~exceptions_queue.leases`: read, claim, heartbeat, release, expire;
- :mod:`~exceptions_queue.resolving`: dismiss and resolve (labels become training data);
- :mod:`~exceptions_queue.qc`: second reviews and adjudication;
- :mod:`~exceptions_queue.reopening`: undo a resolution or dismissal.
"""

from __future__ import annotations

from exceptions_queue.events import SYSTEM, Actor
from exceptions_queue.labels import labels_disagree, options_of
from exceptions_queue.leases import claim, expire_leases, get, heartbeat, release
from exceptions_queue.opening import (
    MAX_GROUP_EXAMPLES,
    DriftIncident,
    NewTicket,
    QualityGroup,
    compact_volume,
    defer_quality_groups,
    feedback_tickets,
    fold_quality_groups,
    hour_of,
    merge_quality_groups,
    open_drift_ticket,
    open_tickets,
)
from exceptions_queue.qc import Target
from exceptions_queue.reopening import FINAL, reopen
from exceptions_queue.repository import (
    TicketFilter,
    finished_times,
    list_tickets,
    models_with_deferred_quality,
    opened_per_hour,
    volume_to_compact,
)
from exceptions_queue.resolving import (
    REVIEWABLE,
    SINGLE,
    LabelIn,
    Resolved,
    RetrainingReady,
    dismiss,
    resolve,
)

__all__ = [
    "FINAL",
    "MAX_GROUP_EXAMPLES",
    "REVIEWABLE",
    "SINGLE",
    "SYSTEM",
    "Actor",
    "DriftIncident",
    "LabelIn",
    "NewTicket",
    "QualityGroup",
    "Resolved",
    "RetrainingReady",
    "Target",
    "TicketFilter",
    "claim",
    "compact_volume",
    "defer_quality_groups",
    "dismiss",
    "expire_leases",
    "feedback_tickets",
    "finished_times",
    "fold_quality_groups",
    "get",
    "heartbeat",
    "hour_of",
    "labels_disagree",
    "list_tickets",
    "merge_quality_groups",
    "models_with_deferred_quality",
    "open_drift_ticket",
    "open_tickets",
    "opened_per_hour",
    "options_of",
    "release",
    "reopen",
    "resolve",
    "volume_to_compact",
]
