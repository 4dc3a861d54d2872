"""Every background loop driftdesk runs, registered with app.background.loop."""

from app.background import loop
from app.drift.service import run_due_evaluations

loop("evaluate", lambda s: s.evaluate_interval_seconds)(run_due_evaluations)
