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
from app.incidents import IncidentKind
from app.performance import service
from app.performance.events import PerformanceDegraded, PerformanceRecovered
from app.performance.tables import PerformanceEvaluation, PerformanceIncident
from app.settings import Settings
from monitors.window import WindowSpec
from storage.base import utcnow
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
    return evaluation


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
                service.compact(session, model=model, before_block=finished_block(model, now) + 1)
                if model.performance:
                    ran += evaluate_model(session, model=model, now=now, settings=settings)
        except Exception:
            log.exception("judging a model's performance failed", extra={"model_id": model_id})
    return ran
