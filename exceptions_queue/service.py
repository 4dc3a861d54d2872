"""The exception queue's operations: open tickets, claim, work and finish them, label.

Keyword-only functions over the caller's session (the unit of work: they never
commit). Every transition goes through one guarded statement of
:mod:`exceptions_queue.repository` and appends a ``ticket_events`` row; a guard
that finds no row is explained (not yours, finished, lease expired) as a 409.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound, ValidationFailed
from app.events import IncidentOpened, RetrainingDataReady, publish
from app.schemas import ModelOptions
from exceptions_queue import repository, states
from exceptions_queue.tables import Label, Ticket
from storage.tables import LabelSchema, MonitoredModel, Prediction

SYSTEM = "system"
# Kinds about exactly one prediction: resolved with one label.
SINGLE = frozenset(
    {"low_confidence", "audit", "feedback_mismatch", "second_review", "adjudication"}
)
# Kinds whose resolution may be sampled for an independent second review.
REVIEWABLE = frozenset({"low_confidence", "audit", "feedback_mismatch"})
# Resolutions that change other reviewers' labels; undoing them would unpick QC.
FINAL = ("second_review", "adjudication")
# Regression labels within this relative difference agree (and ground truth this far
# from the prediction disagrees with it).
REGRESSION_RTOL = 0.1
MAX_GROUP_EXAMPLES = 10


@dataclass(frozen=True)
class Actor:
    """Who acts: an API key's id (the lease holder) and how the audit trail names it."""

    key_id: str
    name: str


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


def options_of(model: LabelSchema) -> ModelOptions:
    return ModelOptions(**(model.options or {}))


def _event(
    ticket_id: int,
    action: states.Action,
    actor: str,
    from_status: states.Status | None,
    now: dt.datetime,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
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
        "abandon_count": 0,
        "created_at": now,
        "updated_at": now,
        "due_at": states.due_at(new.kind, now),
    }


# --------------------------------------------------------------------------- opening
def open_tickets(
    session: Session,
    *,
    model_id: int,
    candidates: Sequence[NewTicket],
    now: dt.datetime,
    budget: int | None = None,
) -> int:
    """Open ``candidates`` (one bulk insert); returns how many were opened.

    With a ``budget`` (tickets per hour), budgeted kinds beyond it are not opened
    but counted as suppressed, highest priority kept first. Tickets that already
    exist (same model, kind and group) are skipped: creation is idempotent.
    """
    hour = hour_of(now)
    keep: list[NewTicket] = []
    suppressed: Counter[str] = Counter()
    budgeted = [c for c in candidates if c.kind in repository.BUDGETED]
    free = [c for c in candidates if c.kind not in repository.BUDGETED]
    if budget is not None and budgeted:
        room = max(0, budget - repository.budget_used(session, model_id=model_id, hour=hour))
        ranked = sorted(budgeted, key=lambda c: -states.PRIORITY[c.kind])
        keep = ranked[:room]
        suppressed.update(c.kind for c in ranked[room:])
    else:
        keep = budgeted
    rows = [_row(model_id, c, now) for c in [*free, *keep]]
    created = repository.insert_tickets(session, rows)
    repository.insert_events(
        session, [_event(tid, "open", SYSTEM, None, now) for tid, _ in created]
    )
    repository.add_volume(
        session,
        model_id=model_id,
        hour=hour,
        opened=Counter(kind for _, kind in created),
        suppressed=suppressed,
    )
    return len(created)


def merge_quality_groups(
    session: Session, *, model_id: int, groups: Sequence[QualityGroup], now: dt.datetime
) -> list[NewTicket]:
    """Add a batch's data-quality breaks to this hour's group tickets.

    A group that already has a ticket (one per model, feature and hour) gets its
    counts and examples updated; the others come back as tickets to open. Ingest
    of one model is serialised (its sequence counter row lock), so the read and
    the update cannot race another batch of the same model.
    """
    hour = hour_of(now)
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
        counts = Counter(details.get("counts", {}))
        counts.update(g.counts)
        examples = list(details.get("examples", []))
        examples.extend(g.examples[: max(0, MAX_GROUP_EXAMPLES - len(examples))])
        details["counts"] = dict(counts)
        details["examples"] = examples
        ticket.details = details
        ticket.count = sum(counts.values())
        ticket.reason = _quality_reason(g.feature, dict(counts), hour)
        ticket.prediction_ids = [e["prediction_id"] for e in examples]
        ticket.updated_at = now
    return new


def _quality_reason(feature: str, counts: dict[str, int], hour: dt.datetime) -> str:
    parts = ", ".join(f"{n} {rule.replace('_', ' ')}" for rule, n in sorted(counts.items()))
    return f"data quality of feature {feature!r} since {hour:%Y-%m-%d %H}:00 UTC: {parts}"


def open_drift_ticket(session: Session, *, event: IncidentOpened) -> int:
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
    )
    return open_tickets(session, model_id=event.model_id, candidates=[new], now=event.at)


def labels_disagree(model: LabelSchema, a: Any, b: Any) -> bool:
    """Whether two labels (or a label and a prediction) differ for this model's task.

    >>> m = MonitoredModel(task="regression")
    >>> labels_disagree(m, 10.0, 10.5), labels_disagree(m, 10.0, 13.0)
    (False, True)
    """
    if model.task == "regression":
        return not math.isclose(float(a), float(b), rel_tol=REGRESSION_RTOL)
    return str(a) != str(b)


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
        )
        for p in predictions
        if p.actual is not None and labels_disagree(model, p.actual, p.prediction)
    ]


# --------------------------------------------------------------------------- reading
def get(session: Session, *, ticket_id: int) -> Ticket:
    """The ticket with this id, or a 404."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}: list them with GET /v1/tickets")
    return ticket


def list_tickets(
    session: Session,
    *,
    limit: int,
    after: tuple[dt.datetime, int] | None = None,
    status: str | None = None,
    kind: str | None = None,
    model_id: int | None = None,
    assignee: str | None = None,
    created_before: dt.datetime | None = None,
    created_after: dt.datetime | None = None,
    overdue_at: dt.datetime | None = None,
) -> list[Ticket]:
    """A page of tickets, oldest first (``limit + 1`` rows tell whether more follow)."""
    return repository.list_tickets(
        session,
        limit=limit,
        after=after,
        status=status,
        kind=kind,
        model_id=model_id,
        assignee=assignee,
        created_before=created_before,
        created_after=created_after,
        overdue_at=overdue_at,
    )


# --------------------------------------------------------------------------- working
def _lost(
    session: Session, *, ticket_id: int, actor: Actor, lease_token: str | None, now: dt.datetime
) -> NotFound | Conflict:
    held = repository.holding(session, ticket_id)
    if held is None:
        return NotFound(f"no ticket {ticket_id}")
    reason = states.conflict_reason(held, actor_key=actor.key_id, lease_token=lease_token, now=now)
    return Conflict(
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
        claim_payload=_lease_until(now + lease),
        model_id=model_id,
        kind=kind,
    )
    if ticket is None or repository.claim_event_written(session, ticket, now=now):
        return ticket
    events = []
    if ticket.last_abandoned_at == now:  # it took over an expired lease
        expired = {"holder": ticket.last_abandoned_by, **_escalation(ticket)}
        events.append(_event(ticket.id, "expire", SYSTEM, "claimed", now, expired))
    events.append(_event(ticket.id, "claim", actor.name, "open", now, _lease(ticket)))
    repository.insert_events(session, events)
    return ticket


def _lease_until(expires: dt.datetime | None) -> dict[str, Any]:
    return {"lease_expires_at": expires.isoformat() if expires else None}


def _lease(ticket: Ticket) -> dict[str, Any]:
    return _lease_until(ticket.lease_expires_at)


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
        raise _lost(session, ticket_id=ticket_id, actor=actor, lease_token=lease_token, now=now)
    repository.insert_events(
        session, [_event(ticket.id, "heartbeat", actor.name, "claimed", now, _lease(ticket))]
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
        raise _lost(session, ticket_id=ticket_id, actor=actor, lease_token=lease_token, now=now)
    repository.insert_events(
        session,
        [_event(ticket.id, "release", actor.name, "claimed", now, _escalation(ticket))],
    )
    return ticket


def _escalation(ticket: Ticket) -> dict[str, Any]:
    return {
        "abandon_count": ticket.abandon_count,
        "priority": ticket.priority,
        "escalated": states.is_escalated(ticket.abandon_count),
    }


def dismiss(
    session: Session,
    *,
    ticket_id: int,
    actor: Actor,
    lease_token: str | None,
    reason: str,
    now: dt.datetime,
) -> Ticket:
    """Finish a held ticket without a label, saying why."""
    ticket = repository.finish(
        session,
        ticket_id=ticket_id,
        key_id=actor.key_id,
        actor=actor.name,
        lease_token=lease_token,
        now=now,
        status="dismissed",
        resolution={"reason": reason},
    )
    if ticket is None:
        raise _lost(session, ticket_id=ticket_id, actor=actor, lease_token=lease_token, now=now)
    repository.insert_events(
        session, [_event(ticket.id, "dismiss", actor.name, "claimed", now, {"reason": reason})]
    )
    return ticket


@dataclass(frozen=True)
class Target:
    """A prediction being labelled: its row id and the client id users know it by."""

    id: int
    client_id: str


@dataclass(frozen=True)
class LabelIn:
    """One label of a resolution: for a prediction (its client id), or for the ticket's own."""

    label: Any
    prediction_id: str | None = None


def resolve(
    session: Session,
    *,
    ticket_id: int,
    actor: Actor,
    lease_token: str | None,
    labels: Sequence[LabelIn],
    note: str | None,
    now: dt.datetime,
) -> Ticket:
    """Finish a held ticket with the human's label(s); they become retraining data.

    A ticket about one prediction takes exactly one label; a drift or
    data-quality ticket takes labels for any of its sampled predictions (or none).
    """
    # written as asked; rewritten below only if checking the labels normalised them
    asked: dict[str, Any] = (
        {"note": note, "label": labels[0].label}
        if len(labels) == 1 and labels[0].prediction_id is None
        else {
            "note": note,
            "labels": [{"prediction_id": x.prediction_id, "label": x.label} for x in labels],
        }
    )
    ticket = repository.finish(
        session,
        ticket_id=ticket_id,
        key_id=actor.key_id,
        actor=actor.name,
        lease_token=lease_token,
        now=now,
        status="resolved",
        resolution=asked,
    )
    if ticket is None:
        raise _lost(session, ticket_id=ticket_id, actor=actor, lease_token=lease_token, now=now)
    model = repository.label_schema(session, ticket.model_id)
    pairs = _labelled_predictions(session, model=model, ticket=ticket, labels=labels)
    resolution = {"note": note, **_resolution_labels(ticket, pairs)}
    if resolution != asked:
        ticket.resolution = resolution
    repository.insert_events(
        session, [_event(ticket.id, "resolve", actor.name, "claimed", now, ticket.resolution)]
    )
    fresh = 0
    if ticket.kind == "second_review":
        fresh = _second_review(
            session, model=model, ticket=ticket, pairs=pairs, actor=actor, now=now
        )
    elif ticket.kind == "adjudication":
        fresh = _adjudicate(session, ticket=ticket, pairs=pairs, actor=actor, note=note, now=now)
    else:
        _store_labels(session, ticket=ticket, pairs=pairs, actor=actor, note=note, now=now)
        fresh = len(pairs)
        if ticket.kind in REVIEWABLE and pairs:
            _maybe_second_review(session, model=model, ticket=ticket, pairs=pairs, now=now)
    if fresh:
        _count_labels(session, model=model, added=fresh, now=now)
    return ticket


def _resolution_labels(ticket: Ticket, pairs: Sequence[tuple[Target, Any]]) -> dict[str, Any]:
    if ticket.kind in SINGLE:
        return {"label": pairs[0][1]} if pairs else {}
    return {"labels": [{"prediction_id": p.client_id, "label": v} for p, v in pairs]}


def _labelled_predictions(
    session: Session, *, model: LabelSchema, ticket: Ticket, labels: Sequence[LabelIn]
) -> list[tuple[Target, Any]]:
    """Check the labels against the ticket and the model; returns (prediction, label)."""
    from app.ingest.feedback import check_label  # app.feedback imports app.intake, which imports us

    if ticket.kind in SINGLE:
        if len(labels) != 1:
            raise ValidationFailed.at(
                ["label"], f"a {ticket.kind} ticket is resolved with exactly one label"
            )
        given = labels[0]
        loc: list[str | int] = ["label"] if given.prediction_id is None else ["labels", 0, "label"]
        value = check_label(model, given.label, loc)
        if ticket.prediction_id is None or ticket.client_id is None:
            raise Conflict(
                f"the prediction of ticket {ticket.id} is no longer stored (retention): "
                "dismiss the ticket instead"
            )
        target = Target(ticket.prediction_id, ticket.client_id)
        if given.prediction_id is not None and given.prediction_id != target.client_id:
            raise ValidationFailed.at(
                ["labels", 0, "prediction_id"],
                f"ticket {ticket.id} is about prediction {target.client_id!r}",
            )
        return [(target, value)]
    if any(item.prediction_id is None for item in labels):
        raise ValidationFailed.at(
            ["label"],
            f"a {ticket.kind} ticket covers several predictions: send "
            '{"labels": [{"prediction_id": ..., "label": ...}]} naming one of them each',
        )
    rows = (
        {
            p.client_id: p
            for p in session.scalars(
                select(Prediction).where(Prediction.id.in_(list(ticket.prediction_ids)))
            )
        }
        if ticket.prediction_ids
        else {}
    )
    pairs: list[tuple[Target, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(labels):
        assert item.prediction_id is not None
        prediction = rows.get(item.prediction_id)
        if prediction is None:
            raise ValidationFailed.at(
                ["labels", i, "prediction_id"],
                f"{item.prediction_id!r} is not one of the predictions of ticket {ticket.id} "
                f"({sorted(rows)})",
            )
        if item.prediction_id in seen:
            raise ValidationFailed.at(["labels", i, "prediction_id"], "labelled twice")
        seen.add(item.prediction_id)
        target = Target(prediction.id, prediction.client_id)
        pairs.append((target, check_label(model, item.label, ["labels", i, "label"])))
    return pairs


def _label_row(
    ticket: Ticket,
    prediction: Target,
    value: Any,
    *,
    actor: Actor,
    note: str | None,
    now: dt.datetime,
    source: str,
    status: str,
    superseded_by: int | None = None,
) -> dict[str, Any]:
    return {
        "model_id": ticket.model_id,
        "prediction_id": prediction.id,
        "ticket_id": ticket.id,
        "ticket_kind": ticket.kind,
        "label": value,
        "note": note,
        "source": source,
        "status": status,
        "labelled_by": actor.key_id,
        "labelled_by_name": actor.name,
        "labelled_at": now,
        "superseded_by": superseded_by,
    }


def _store_labels(
    session: Session,
    *,
    ticket: Ticket,
    pairs: Sequence[tuple[Target, Any]],
    actor: Actor,
    note: str | None,
    now: dt.datetime,
    source: str = "review",
) -> list[int]:
    return repository.insert_current_labels(
        session,
        [
            _label_row(
                ticket, p, v, actor=actor, note=note, now=now, source=source, status="current"
            )
            for p, v in pairs
        ],
    )


def _maybe_second_review(
    session: Session,
    *,
    model: LabelSchema,
    ticket: Ticket,
    pairs: Sequence[tuple[Target, Any]],
    now: dt.datetime,
) -> None:
    rate = options_of(model).review_rate
    # seeded by the ticket: the same resolution is sampled the same way on every replica
    if rate <= 0 or random.Random(ticket.id).random() >= rate:
        return
    prediction = session.get(Prediction, pairs[0][0].id)
    assert ticket.resolved_by is not None and prediction is not None
    open_tickets(
        session,
        model_id=ticket.model_id,
        candidates=[
            NewTicket(
                kind="second_review",
                group_key=f"review:{ticket.id}",
                reason=(
                    f"independent second review of ticket {ticket.id} ({ticket.kind}); "
                    "the first label is hidden until you resolve"
                ),
                details={
                    "subject_kind": ticket.kind,
                    "prediction": prediction.prediction,
                    "confidence": prediction.confidence,
                },
                prediction_id=prediction.id,
                client_id=prediction.client_id,
                subject_ticket_id=ticket.id,
                excluded_key_id=ticket.resolved_by,
            )
        ],
        now=now,
    )


def _second_review(
    session: Session,
    *,
    model: LabelSchema,
    ticket: Ticket,
    pairs: Sequence[tuple[Target, Any]],
    actor: Actor,
    now: dt.datetime,
) -> int:
    """Compare with the first label: agreement confirms it, disagreement opens adjudication."""
    target, value = pairs[0]
    assert ticket.subject_ticket_id is not None
    first = [
        lab
        for lab in repository.labels_of_ticket(
            session, ticket.subject_ticket_id, statuses=["current"]
        )
        if lab.prediction_id == target.id
    ]
    if not first:  # the first label was replaced meanwhile: this one stands alone
        _store_labels(
            session,
            ticket=ticket,
            pairs=pairs,
            actor=actor,
            note=None,
            now=now,
            source="second_review",
        )
        return 1
    original = first[0]
    agreed = not labels_disagree(model, original.label, value)
    ticket.qc_agreed = agreed
    note = (ticket.resolution or {}).get("note")
    row = _label_row(
        ticket,
        target,
        value,
        actor=actor,
        note=note,
        now=now,
        source="second_review",
        status="superseded" if agreed else "disputed",
        superseded_by=original.id if agreed else None,
    )
    repository.insert_labels(session, [row])
    if agreed:
        return 0
    repository.set_label_status(session, label_ids=[original.id], status="disputed")
    prediction = session.get(Prediction, target.id)
    assert prediction is not None
    open_tickets(
        session,
        model_id=ticket.model_id,
        candidates=[
            NewTicket(
                kind="adjudication",
                group_key=f"adj:{ticket.subject_ticket_id}",
                reason=(
                    f"reviewers disagree on ticket {ticket.subject_ticket_id}: "
                    f"{original.label!r} ({original.labelled_by_name}) vs {value!r} ({actor.name})"
                ),
                details={
                    "prediction": prediction.prediction,
                    "confidence": prediction.confidence,
                    "labels": [
                        {
                            "label": original.label,
                            "by": original.labelled_by_name,
                            "ticket_id": original.ticket_id,
                        },
                        {"label": value, "by": actor.name, "ticket_id": ticket.id},
                    ],
                },
                prediction_id=prediction.id,
                client_id=prediction.client_id,
                subject_ticket_id=ticket.subject_ticket_id,
            )
        ],
        now=now,
    )
    return 0


def _adjudicate(
    session: Session,
    *,
    ticket: Ticket,
    pairs: Sequence[tuple[Target, Any]],
    actor: Actor,
    note: str | None,
    now: dt.datetime,
) -> int:
    """The adjudicated label supersedes the disputed ones: it is the one exported."""
    _store_labels(
        session, ticket=ticket, pairs=pairs, actor=actor, note=note, now=now, source="adjudication"
    )
    return 1


def _count_labels(session: Session, *, model: LabelSchema, added: int, now: dt.datetime) -> None:
    threshold = options_of(model).retraining_ready_labels
    if threshold is None:
        # The counter row is one per model, so every resolve of the model would queue
        # on its row lock; it is only kept while someone wants the event.
        return
    reached = repository.count_labels(
        session, model_id=model.id, added=added, now=now, threshold=threshold
    )
    if reached is None:
        return
    new, total, since = reached
    publish(
        session,
        RetrainingDataReady(
            model_id=model.id,
            model_name=model.name,
            at=now,
            new_labels=new,
            total_labels=total,
            since=since,
            export_path=f"/v1/models/{model.name}/training-data",
        ),
    )


def reopen(
    session: Session,
    *,
    ticket_id: int,
    actor: Actor,
    now: dt.datetime,
    lease: dt.timedelta = states.DEFAULT_LEASE,
) -> Ticket:
    """Undo a resolution or dismissal: its reviewer holds the ticket again.

    Only within :data:`states.REOPEN_WINDOW`, and not once a second review of it
    is under way. Its labels are retracted (labels they had replaced are current
    again); the history keeps both the resolution and the undo.
    """
    before = repository.holding(session, ticket_id)
    if before is None:
        raise NotFound(f"no ticket {ticket_id}")
    busy = repository.followups_in_progress(session, subject_ticket_id=ticket_id)
    if busy:
        raise Conflict(
            f"ticket {ticket_id} is already in second review (ticket {busy[0].id}): "
            "it can no longer be reopened",
            details=[{"reason": "in_review", "status": busy[0].status}],
        )
    ticket = repository.reopen(
        session,
        ticket_id=ticket_id,
        key_id=actor.key_id,
        actor=actor.name,
        lease_token=secrets.token_hex(16),
        lease=lease,
        now=now,
        final_kinds=FINAL,
    )
    if ticket is None:
        raise _reopen_refused(session, ticket_id=ticket_id, actor=actor, now=now)
    previous = session.execute(
        select(Label.id).where(Label.ticket_id == ticket.id, Label.status == "current")
    ).scalars()
    retracted = list(previous)
    repository.set_label_status(session, label_ids=retracted, status="retracted")
    if retracted:
        session.execute(
            update(Label)
            .where(Label.superseded_by.in_(retracted), Label.status == "superseded")
            .values(status="current", superseded_by=None)
            .execution_options(synchronize_session=False)
        )
    cancelled = repository.cancel_open_followups(
        session,
        subject_ticket_id=ticket.id,
        now=now,
        reason=f"ticket {ticket.id} was reopened",
    )
    events = [
        _event(
            ticket.id,
            "reopen",
            actor.name,
            before.status,
            now,
            {"retracted_labels": retracted, **_lease(ticket)},
        )
    ]
    events += [
        _event(c.id, "cancel", SYSTEM, "open", now, {"reason": f"ticket {ticket.id} reopened"})
        for c in cancelled
    ]
    repository.insert_events(session, events)
    return ticket


def _reopen_refused(
    session: Session, *, ticket_id: int, actor: Actor, now: dt.datetime
) -> NotFound | Conflict:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return NotFound(f"no ticket {ticket_id}")
    if ticket.status not in states.FINISHED:
        why, message = "not_finished", f"ticket {ticket_id} is {ticket.status}: nothing to undo"
    elif ticket.kind in FINAL:
        why, message = "final", f"a {ticket.kind} resolution is final: it cannot be reopened"
    elif ticket.resolved_by != actor.key_id:
        why, message = "not_resolver", "only the reviewer who finished a ticket may reopen it"
    else:
        minutes = int(states.REOPEN_WINDOW.total_seconds() // 60)
        why, message = (
            "window_passed",
            f"ticket {ticket_id} was finished more than {minutes} minutes ago: it can no longer "
            "be reopened",
        )
    return Conflict(message, details=[{"reason": why, "status": ticket.status}])


def expire_leases(session: Session, *, now: dt.datetime, limit: int = 500) -> int:
    """Return tickets whose lease expired to the queue (the reaper loop's step)."""
    tickets = repository.expire_leases(session, now=now, limit=limit)
    repository.insert_events(
        session,
        [
            _event(
                t.id,
                "expire",
                SYSTEM,
                "claimed",
                now,
                {"holder": t.last_abandoned_by, **_escalation(t)},
            )
            for t in tickets
        ],
    )
    return len(tickets)
