"""Every background loop driftdesk runs, registered with app.background.loop."""

from app.alerting.dispatcher import dispatch_due
from app.alerting.rules import run_alert_rules
from app.background import loop
from app.db import Database
from app.drift.service import run_due_evaluations
from app.ops.retention import run_retention
from app.settings import Settings
from exceptions_queue.service import expire_leases
from storage.base import utcnow

loop("evaluate", lambda s: s.evaluate_interval_seconds)(run_due_evaluations)
loop("dispatch", lambda s: s.dispatch_interval_seconds)(dispatch_due)
loop("alert-rules", lambda s: s.alert_rules_interval_seconds)(run_alert_rules)


def _reap_leases(db: Database, settings: Settings) -> int:
    """Expired leases return their tickets to the queue."""
    with db.session() as session:
        return expire_leases(session, now=utcnow())


loop("lease-reaper", lambda s: s.lease_reaper_interval_seconds)(_reap_leases)
loop("retention", lambda s: s.retention_interval_seconds)(run_retention)
