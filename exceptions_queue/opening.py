"""Opening tickets: what the rules, drift and feedback ask for, in one bulk insert.

Creation is idempotent (one ticket per model, kind and group key) and
budgeted: with a label budget, flagged records are drawn by value
(:func:`exceptions_queue.sampling.admit`) and those not drawn are counted as
suppressed instead of opened.

Data-quality breaks are grouped into one ticket per model, feature and hour,
read and then updated under the model's ``TICKETS`` advisory lock. A batch
that finds the lock held (and needs it for no label budget) does not wait: it
defers its groups (:func:`defer_quality_groups`, a ``quality_deferred`` row in
its own transaction), and the next holder of the lock folds them into the
tickets of their own hour (:func:`fold_quality_groups`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlalchemy.orm import Session

from exceptions_queue import repository, sampling, states
from exceptions_queue.events import SYSTEM, event_row
from exceptions_queue.labels import labels_disagree
from storage.sql import LockKey, advisory_lock
from storage.tables import MonitoredModel, Prediction

MAX_GROUP_EXAMPLES = 10


@dataclass(frozen=True)
class NewTicket:
    """A ticket a rule wants opened."""

    kind: states.Kind
    group_key: str
    reason: str
    details: dict[str, Any]
    prediction_id: int | None = None
    client_id: str | None = None  # the prediction's, as its client posted it
    prediction_ids: tuple[int, ...] = ()
    subject_ticket_id: int | None = None
    excluded_key_id: str | None = None
    count: int = 1
    # the sampling design (exceptions_queue.sampling): the probability that the
    # record was chosen (None: not a probability sample) and its stratum
    inclusion_probability: float | None = None
    sampling_stratum: str | None = None
    # what labelling the record is worth to the model (monitors.sampling.record_value):
    # a budget draws flagged records in proportion to it
    value: float | None = None
    # audits: the record's uniform draw (audited while it is below the rate in force)
    draw: float | None = None


@dataclass
class QualityGroup:
    """Data-quality breaks of one feature in one hour, from one batch."""

    feature: str
    counts: dict[str, int]
    # {"prediction_id", "client_id", "rule", "value"}
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def hour_of(now: dt.datetime) -> dt.datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def _row(model_id: int, new: NewTicket, now: dt.datetime) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "kind": new.kind,
        "group_key": new.group_key,
        "status": "open",
        "priority": states.PRIORITY[new.kind],
        "reason": new.reason,
        "details": new.details,
        "prediction_id": new.prediction_id,
        "client_id": new.client_id,
        "prediction_ids": list(new.prediction_ids),
        "subject_ticket_id": new.subject_ticket_id,
        "excluded_key_id": new.excluded_key_id,
        "count": new.count,
        "inclusion_probability": new.inclusion_probability,
        "sampling_stratum": new.sampling_stratum,
        "abandon_count": 0,
        "created_at": now,
        "updated_at": now,
        "due_at": states.due_at(new.kind, now),
    }


def open_tickets(
    session: Session,
    *,
    model_id: int,
    candidates: Sequence[NewTicket],
    now: dt.datetime,
    budget: sampling.Budget | None = None,
    rng: np.random.Generator | None = None,
    audit: sampling.AuditPlan | None = None,
) -> int:
    """Open ``candidates`` (one bulk insert); returns how many were opened.

    With a label ``budget``, flagged records are drawn by value (``rng``: the
    draw) and those not drawn are counted as suppressed. Tickets that already
    exist (same model, kind and group) are skipped: creation is idempotent.
    """
    hour = hour_of(now)
    admission = sampling.admit(
        session,
        model_id=model_id,
        candidates=candidates,
        now=now,
        budget=budget,
        rng=rng,
        audit=audit,
    )
    suppressed = admission.suppressed
    rows = [_row(model_id, c, now) for c in admission.admitted]
    created = repository.insert_tickets(session, rows)
    repository.insert_events(
        session, [event_row(tid, "open", SYSTEM, None, now) for tid, _ in created]
    )
    repository.add_volume(
        session,
        model_id=model_id,
        hour=hour,
        opened=Counter(kind for _, kind in created),
        suppressed=suppressed,
        expected=admission.expected,
    )
    return len(created)


def merge_quality_groups(
    session: Session,
    *,
    model_id: int,
    groups: Sequence[QualityGroup],
    hour: dt.datetime,
    now: dt.datetime,
) -> list[NewTicket]:
    """Add data-quality breaks of ``hour`` (one group per feature) to that hour's group tickets.

    A group that already has a ticket (one per model, feature and hour) gets its
    counts and examples updated; the others come back as tickets to open. The
    caller holds the model's ``TICKETS`` advisory lock (app.ingest.flows), so the
    read and the update cannot race another transaction of the same model.
    """
    key_of = {g.feature: f"dq:{g.feature}:{hour.strftime('%Y-%m-%dT%H')}" for g in groups}
    existing = repository.existing_groups(
        session, model_id=model_id, kind="data_quality", group_keys=key_of.values()
    )
    new: list[NewTicket] = []
    for g in groups:
        ticket = existing.get(key_of[g.feature])
        if ticket is None:
            examples = g.examples[:MAX_GROUP_EXAMPLES]
            new.append(
                NewTicket(
                    kind="data_quality",
                    group_key=key_of[g.feature],
                    reason=_quality_reason(g.feature, g.counts, hour),
                    details={
                        "feature": g.feature,
                        "hour": hour.isoformat(),
                        "counts": dict(g.counts),
                        "examples": examples,
                    },
                    prediction_ids=tuple(e["prediction_id"] for e in examples),
                    count=g.total,
                )
            )
            continue
        details = dict(ticket.details)
        merged = QualityGroup(
            g.feature, dict(details.get("counts", {})), list(details.get("examples", []))
        )
        _add(merged, g)
        details["counts"] = merged.counts
        details["examples"] = merged.examples
        ticket.details = details
        ticket.count = merged.total
        ticket.reason = _quality_reason(g.feature, merged.counts, hour)
        ticket.prediction_ids = [e["prediction_id"] for e in merged.examples]
        ticket.updated_at = now
    return new


def _add(into: QualityGroup, group: QualityGroup) -> None:
    """Add ``group``'s breaks (of the same feature) to ``into``: counts summed, examples
    appended up to ``MAX_GROUP_EXAMPLES``."""
    for rule, n in group.counts.items():
        into.counts[rule] = into.counts.get(rule, 0) + n
    into.examples.extend(group.examples[: max(0, MAX_GROUP_EXAMPLES - len(into.examples))])


def combine_quality_groups(groups: Sequence[QualityGroup]) -> list[QualityGroup]:
    """One group per feature of ``groups`` (all of one hour), in order of first appearance."""
    out: dict[str, QualityGroup] = {}
    for g in groups:
        _add(out.setdefault(g.feature, QualityGroup(g.feature, {})), g)
    return list(out.values())


def defer_quality_groups(
    session: Session, *, model_id: int, groups: Sequence[QualityGroup], now: dt.datetime
) -> None:
    """Keep a batch's data-quality groups (of ``now``'s hour) for the next holder of the
    model's ``TICKETS`` lock, in the caller's transaction: durable with the batch's rows.

    For a batch that found the lock held and needs it for nothing else: it does
    not wait for the merge (:func:`fold_quality_groups` does it later).
    """
    rows = [
        {
            "feature": g.feature,
            "counts": dict(g.counts),
            "examples": g.examples[:MAX_GROUP_EXAMPLES],
        }
        for g in groups
    ]
    repository.defer_quality(session, model_id=model_id, hour=hour_of(now), groups=rows, now=now)


def fold_quality_groups(
    session: Session,
    *,
    model_id: int,
    groups: Sequence[QualityGroup] = (),
    now: dt.datetime,
    take_deferred: bool = True,
) -> list[NewTicket]:
    """Merge the model's deferred data-quality groups, each under its own hour, and
    ``groups`` (a batch's, of ``now``'s hour) into the group tickets; returns the
    tickets to open.

    The caller holds the model's ``TICKETS`` lock. The deferred rows are taken
    (deleted) first; several groups of one hour and feature become one.
    ``take_deferred=False`` skips that statement where nothing is ever deferred
    (SQLite, whose try-lock always succeeds).
    """
    by_hour: dict[dt.datetime, list[QualityGroup]] = defaultdict(list)
    if take_deferred:
        for hour, stored in repository.take_deferred_quality(session, model_id=model_id):
            by_hour[hour].extend(QualityGroup(**g) for g in stored)
    if groups:
        by_hour[hour_of(now)].extend(groups)
    new: list[NewTicket] = []
    for hour in sorted(by_hour):
        new += merge_quality_groups(
            session,
            model_id=model_id,
            groups=combine_quality_groups(by_hour[hour]),
            hour=hour,
            now=now,
        )
    return new


def _quality_reason(feature: str, counts: dict[str, int], hour: dt.datetime) -> str:
    parts = ", ".join(f"{n} {rule.replace('_', ' ')}" for rule, n in sorted(counts.items()))
    return f"data quality of feature {feature!r} since {hour:%Y-%m-%d %H}:00 UTC: {parts}"


class DriftIncident(Protocol):
    """What the queue reads of a drift incident that opened (app/drift/events.py has one)."""

    @property
    def model_id(self) -> int: ...
    @property
    def at(self) -> dt.datetime: ...
    @property
    def incident_id(self) -> int: ...
    @property
    def evaluation_id(self) -> int: ...
    @property
    def severity(self) -> str: ...
    @property
    def drifted_features(self) -> tuple[str, ...]: ...
    @property
    def window_start(self) -> dt.datetime | None: ...
    @property
    def window_end(self) -> dt.datetime | None: ...
    @property
    def evaluation(self) -> dict[str, Any]: ...
    @property
    def sample_prediction_ids(self) -> tuple[int, ...]: ...


def open_drift_ticket(session: Session, *, event: DriftIncident) -> int:
    """One drift ticket per incident, holding its evaluation and a labelling sample."""
    features = ", ".join(event.drifted_features) or "the model's output"
    new = NewTicket(
        kind="drift",
        group_key=f"incident:{event.incident_id}",
        reason=f"drift incident {event.incident_id} ({event.severity}): {features} drifted",
        details={
            "incident_id": event.incident_id,
            "evaluation_id": event.evaluation_id,
            "severity": event.severity,
            "drifted_features": list(event.drifted_features),
            "window_start": event.window_start.isoformat() if event.window_start else None,
            "window_end": event.window_end.isoformat() if event.window_end else None,
            "evaluation": event.evaluation,
        },
        prediction_ids=tuple(event.sample_prediction_ids),
        count=len(event.sample_prediction_ids),
        # chosen for being doubtful in a drifted window: not a probability sample
        sampling_stratum=sampling.DRIFT_SAMPLE,
    )
    return open_tickets(session, model_id=event.model_id, candidates=[new], now=event.at)


def feedback_tickets(model: MonitoredModel, predictions: Sequence[Prediction]) -> list[NewTicket]:
    """``feedback_mismatch`` tickets for ground truth that contradicts the prediction."""
    return [
        NewTicket(
            kind="feedback_mismatch",
            group_key=f"pred:{p.id}",
            reason=f"ground truth {p.actual!r} disagrees with the prediction {p.prediction!r}",
            details={"prediction": p.prediction, "actual": p.actual, "confidence": p.confidence},
            prediction_id=p.id,
            client_id=p.client_id,
            sampling_stratum=sampling.FEEDBACK_MISMATCH,
        )
        for p in predictions
        if p.actual is not None and labels_disagree(model, p.actual, p.prediction)
    ]


def compact_volume(session: Session, *, since: dt.datetime) -> int:
    """Merge the ticket volume's partial rows of the hours from ``since`` on (one process
    at a time); rows removed.

    Each transaction that opens tickets adds rows of its own (never an update, so
    none waits on another for the hour's counter), always in the current hour;
    this keeps them few. Older rows left unmerged (no process ran it for that
    long) stay correct: readers sum them.
    """
    if not advisory_lock(session, LockKey.TICKET_VOLUME, wait=False):
        return 0  # another process is compacting
    return repository.compact_volume(session, since=since)
