"""Every background loop driftdesk runs: one explicit list, read by app.background.

Each loop is a plain function ``step(db, settings) -> int`` (how much work it
did), run on its own thread at its interval. Add a loop by adding it to LOOPS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from app.alerting.dispatcher import dispatch_due
from app.alerting.rules import run_alert_rules
from app.db import Database
from app.drift.service import run_due_evaluations
from app.ingest.flows import fold_deferred_quality
from app.ops.retention import run_retention
from app.performance.fit_step import fit_pending
from app.performance.incidents import run_due as judge_performance
from app.settings import Settings
from exceptions_queue.service import compact_volume, expire_leases, volume_to_compact
from storage.base import utcnow

Step = Callable[[Database, Settings], int]


@dataclass(frozen=True)
class Loop:
    name: str
    step: Step
    interval: Callable[[Settings], float]


def _reap_leases(db: Database, settings: Settings) -> int:
    """Expired leases return their tickets to the queue."""
    with db.session() as session:
        return expire_leases(session, now=utcnow())


def _compact_ticket_volume(db: Database, settings: Settings) -> int:
    """The hour's ticket counters are partial rows (one per transaction): merge the last
    day's. Looked for in a read first: no write (SQLite's write lock) when there are none."""
    since = utcnow() - dt.timedelta(days=1)
    with db.session(readonly=True) as session:
        if not volume_to_compact(session, since=since, limit=1):
            return 0
    with db.session() as session:
        return compact_volume(session, since=since)


LOOPS: tuple[Loop, ...] = (
    Loop("evaluate", run_due_evaluations, lambda s: s.evaluate_interval_seconds),
    Loop("performance", judge_performance, lambda s: s.evaluate_interval_seconds),
    Loop("performance-fit", fit_pending, lambda s: s.evaluate_interval_seconds),
    # data-quality groups a batch deferred (the model's ticket lock was held), when no
    # later batch of the model folded them
    Loop("quality-fold", fold_deferred_quality, lambda s: s.evaluate_interval_seconds),
    Loop("ticket-volume", _compact_ticket_volume, lambda s: s.evaluate_interval_seconds),
    Loop("dispatch", dispatch_due, lambda s: s.dispatch_interval_seconds),
    Loop("alert-rules", run_alert_rules, lambda s: s.alert_rules_interval_seconds),
    Loop("lease-reaper", _reap_leases, lambda s: s.lease_reaper_interval_seconds),
    Loop("retention", run_retention, lambda s: s.retention_interval_seconds),
)
