"""The performance evaluator: judge each finished window, open and close incidents.

A loop step (:func:`run_due`) judges, per model with performance settings, the
windows ending at the blocks that finished since it last ran, stores each
judgement, and moves the model's performance incident with the same debounce as
drift incidents (:func:`app.incidents.advance`). Opening and closing publish
``PerformanceDegraded`` / ``PerformanceRecovered`` to alerting, which turns
them into ``performance.degraded`` / ``performance.recovered`` alerts in the
same transaction (the outbox).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import incidents
from app.alerting import rules
from app.db import Database
from app.drift.tables import DriftIncident
from app.incidents import IncidentKind
from app.performance import labels, service
from app.performance.events import PerformanceDegraded, PerformanceRecovered
from app.performance.tables import PerformanceEvaluation, PerformanceIncident
from app.settings import Settings
from exceptions_queue import sampling
from monitors.window import WindowSpec
from storage.base import utcnow
from storage.options import ModelOptions
from storage.sql import LockKey, advisory_lock
from storage.tables import MonitoredModel

log = logging.getLogger("driftdesk.performance")

MAX_CATCH_UP = 10


def finished_block(model: MonitoredModel, now: dt.datetime) -> int:
    """The model's last finished block (-1: none yet)."""
    window = WindowSpec.parse(model.window)
    if window.kind == "count":
        return model.record_count // window.step - 1
    return int(now.timestamp()) // window.step - 1


def due_blocks(session: Session, model: MonitoredModel, now: dt.datetime) -> list[int]:
    """Finished blocks not judged yet (at most MAX_CATCH_UP, the latest)."""
    finished = finished_block(model, now)
    if finished < 0:
        return []
    last = session.scalar(
        select(func.max(PerformanceEvaluation.last_block)).where(
            PerformanceEvaluation.model_id == model.id
        )
    )
    start = finished if last is None else int(last) + 1
    return list(range(max(start, finished - MAX_CATCH_UP + 1), finished + 1))


def _status(item: dict[str, Any], verdict: service.Judgement | None) -> str:
    if verdict is None or verdict.source is None or not item["rows"]:
        return "insufficient_data"
    return "degraded" if verdict.degraded else "ok"


def judge_block(
    session: Session, *, model: MonitoredModel, block: int, now: dt.datetime, settings: Settings
) -> PerformanceEvaluation:
    """Judge the window ending at ``block``; store it and move the incident."""
    [(item, verdict)] = service.windows(session, model=model, last=[block], model_version=None)
    status = _status(item, verdict)
    evaluation = PerformanceEvaluation(
        model_id=model.id,
        first_block=item["first_block"],
        last_block=item["last_block"],
        window_start=item["window_start"],
        window_end=item["window_end"],
        status=status,
        degraded=status == "degraded",
        result=_jsonable(item),
        created_at=now,
    )
    session.add(evaluation)
    session.flush()
    _advance(
        session,
        model=model,
        evaluation=evaluation,
        item=item,
        verdict=verdict,
        now=now,
        settings=settings,
    )
    mark_labels_needed(session, model=model, item=item, verdict=verdict)
    return evaluation


def labels_verdict(item: dict[str, Any], verdict: service.Judgement | None) -> tuple[bool, str]:
    """Whether labels are needed to decide if the window is past its bound, and why.

    Decided when the estimate that judged the window is a labelled one (realized
    or audited) and its 95% interval lies wholly on one side of the bound;
    otherwise (judged without labels, or an interval that contains the bound)
    labels are needed.

    >>> from app.performance.service import Judgement
    >>> est = {"value": 0.72, "ci_low": 0.66, "ci_high": 0.78}
    >>> item = {"metrics": {"accuracy": {"audited": est, "estimated": None}}}
    >>> labels_verdict(item, Judgement("accuracy", "audited", 0.72, 0.75, True))[0]
    True
    >>> est["ci_high"] = 0.74
    >>> labels_verdict(item, Judgement("accuracy", "audited", 0.72, 0.75, True))
    (False, 'decided: the audited accuracy 0.720 [0.660, 0.740] is below the bound 0.75')
    """
    if verdict is None or verdict.bound is None:
        return False, "no bound to decide against"
    bound = verdict.bound
    est = item["metrics"][verdict.metric].get(verdict.source) if verdict.source else None
    what = f"the {verdict.source} {verdict.metric}"
    if est is None or est.get("ci_low") is None:
        return True, f"{verdict.metric} has no estimate with an interval yet; labels decide it"
    span = f"{est['value']:.3f} [{est['ci_low']:.3f}, {est['ci_high']:.3f}]"
    if verdict.source not in ("realized", "audited"):
        return True, (
            f"judged without labels ({what} {span} against the bound {bound:g}): "
            "labels decide whether it is past the bound"
        )
    if est["ci_high"] < bound or est["ci_low"] > bound:
        side = "below" if est["ci_high"] < bound else "above"
        return False, f"decided: {what} {span} is {side} the bound {bound:g}"
    return True, f"{what} {span} contains the bound {bound:g}: too wide to decide"


def mark_labels_needed(
    session: Session,
    *,
    model: MonitoredModel,
    item: dict[str, Any],
    verdict: service.Judgement | None,
) -> None:
    """Say on the model's open incidents (drift and performance) whether labels are needed
    to decide them, from the window just judged; ingest raises the audit rate while
    they are (exceptions_queue.sampling.raised_rate)."""
    needed, note = labels_verdict(item, verdict)
    if needed:
        budget = sampling.Budget.of(ModelOptions(**(model.options or {})))
        note += (
            f"; the audit rate is raised within the label budget ({budget.labels} a "
            f"{budget.period}) until labels decide it"
            if budget is not None
            else "; no label budget is set, so the audit rate stays as it is "
            "(set ticket_budget_per_hour to let driftdesk raise it)"
        )
    tables: tuple[Any, ...] = (PerformanceIncident, DriftIncident)
    for table in tables:
        for incident in session.scalars(
            select(table).where(table.model_id == model.id, table.status == "open")
        ):
            incident.needs_labels = needed
            incident.labels_note = note


def _jsonable(item: dict[str, Any]) -> dict[str, Any]:
    out = dict(item)
    for k in ("window_start", "window_end"):
        if isinstance(out[k], dt.datetime):
            out[k] = out[k].isoformat()
    return out


PERFORMANCE_INCIDENTS = IncidentKind(
    incident=PerformanceIncident,
    evaluation=PerformanceEvaluation,
    bad=PerformanceEvaluation.degraded,
    newest_first=PerformanceEvaluation.last_block.desc(),
)


def open_incident(session: Session, model_id: int) -> PerformanceIncident | None:
    found: PerformanceIncident | None = incidents.open_incident(
        session, PERFORMANCE_INCIDENTS, model_id
    )
    return found


def _severity(verdict: service.Judgement, estimate: dict[str, Any] | None) -> str:
    """Critical when even the interval's best end is past the bound by more than its width."""
    if estimate is None or verdict.bound is None or estimate.get("ci_low") is None:
        return "warning"
    width = estimate["ci_high"] - estimate["ci_low"]
    gap = (
        verdict.bound - estimate["ci_high"]
        if estimate["ci_high"] < verdict.bound
        else estimate["ci_low"] - verdict.bound
    )
    return "critical" if gap > max(width, 0.02 * abs(verdict.bound)) else "warning"


def _advance(
    session: Session,
    *,
    model: MonitoredModel,
    evaluation: PerformanceEvaluation,
    item: dict[str, Any],
    verdict: service.Judgement | None,
    now: dt.datetime,
    settings: Settings,
) -> None:
    """Open an incident after k degraded of the last m windows; close it after q good."""

    def new(**shared: Any) -> PerformanceIncident:
        assert verdict is not None and verdict.source is not None
        return PerformanceIncident(
            **shared,
            severity=_severity(verdict, item["metrics"][verdict.metric][verdict.source]),
            metric=verdict.metric,
            source=verdict.source,
            value=verdict.value,
            bound=verdict.bound,
            first_block=evaluation.first_block,
            last_block=evaluation.last_block,
        )

    def carry(incident: PerformanceIncident, judged: bool) -> None:
        incident.last_block = evaluation.last_block

    def opened(incident: PerformanceIncident) -> None:
        assert verdict is not None and verdict.source is not None
        rules.performance_degraded(
            session, _degraded(model, incident, item, verdict, now), settings=settings
        )

    def closed(incident: PerformanceIncident) -> None:
        rules.performance_recovered(
            session,
            PerformanceRecovered(
                model_id=model.id,
                model_name=model.name,
                at=now,
                incident_id=incident.id,
                metric=incident.metric,
                value=None if verdict is None else verdict.value,
                bound=None if verdict is None else verdict.bound,
                opened_at=incident.opened_at,
            ),
        )

    incidents.advance(
        session,
        PERFORMANCE_INCIDENTS,
        incidents.Moves(new=new, opened=opened, closed=closed, carry=carry),
        model=model,
        evaluation=evaluation,
        bad=evaluation.degraded,
        now=now,
    )


def _degraded(
    model: MonitoredModel,
    incident: PerformanceIncident,
    item: dict[str, Any],
    verdict: service.Judgement,
    now: dt.datetime,
) -> PerformanceDegraded:
    """The opened incident as alerting takes it: the estimate that judged, and the window."""
    assert verdict.source is not None
    estimate = item["metrics"][verdict.metric][verdict.source]
    return PerformanceDegraded(
        model_id=model.id,
        model_name=model.name,
        at=now,
        incident_id=incident.id,
        severity=incident.severity,
        metric=verdict.metric,
        source=verdict.source,
        value=verdict.value,
        ci_low=estimate.get("ci_low"),
        ci_high=estimate.get("ci_high"),
        bound=verdict.bound,
        reference=item["reference"].get(verdict.metric),
        rows=item["rows"],
        window_start=item["window_start"],
        window_end=item["window_end"],
    )


def evaluate_model(
    session: Session, *, model: MonitoredModel, now: dt.datetime, settings: Settings
) -> int:
    """Judge the model's due windows; returns how many were judged."""
    if not advisory_lock(session, LockKey.PERFORMANCE_EVALUATION, item=model.id):
        return 0
    judged = 0
    for block in due_blocks(session, model, now):
        evaluation = judge_block(session, model=model, block=block, now=now, settings=settings)
        judged += 1
        log.info(
            "performance judged",
            extra={"model": model.name, "block": block, "status": evaluation.status},
        )
    return judged


def run_due(db: Database, settings: Settings) -> int:
    """The loop's step: every active model's finished blocks compacted; the windows of
    those with performance settings judged. Returns the windows judged."""
    with db.session(readonly=True) as session:
        ids = session.scalars(
            select(MonitoredModel.id).where(MonitoredModel.status == "active")
        ).all()
    ran = 0
    for model_id in ids:
        try:
            with db.session() as session:
                model = session.get(MonitoredModel, model_id)
                if model is None:
                    continue
                now = utcnow()
                labels.sync_pending(session, model_id=model.id, now=now)
                service.compact(session, model=model, before_block=finished_block(model, now) + 1)
                if model.performance:
                    ran += evaluate_model(session, model=model, now=now, settings=settings)
        except Exception:
            log.exception("judging a model's performance failed", extra={"model_id": model_id})
    return ran
