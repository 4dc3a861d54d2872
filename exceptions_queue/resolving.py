"""Finishing a held ticket: dismiss it, or resolve it with the human's labels.

A resolution becomes retraining data; one of a reviewable kind may be sampled
for an independent second review (:mod:`exceptions_queue.qc`). When enough new
labels have accumulated, :func:`resolve` says so in its result
(:class:`RetrainingReady`): the caller's flow raises the notice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from exceptions_queue import qc, repository
from exceptions_queue.errors import InvalidInput, TicketConflict
from exceptions_queue.events import Actor, event_row
from exceptions_queue.labels import LabelRefused, options_of, valid_label
from exceptions_queue.leases import lost
from exceptions_queue.qc import Target, store_labels
from exceptions_queue.tables import Ticket
from storage.tables import LabelSchema

# Kinds about exactly one prediction: resolved with one label.
SINGLE = frozenset(
    {"low_confidence", "audit", "feedback_mismatch", "second_review", "adjudication"}
)
# Kinds whose resolution may be sampled for an independent second review.
REVIEWABLE = frozenset({"low_confidence", "audit", "feedback_mismatch"})


@dataclass(frozen=True)
class LabelIn:
    """One label of a resolution: for a prediction (its client id), or for the ticket's own."""

    label: Any
    prediction_id: str | None = None


@dataclass(frozen=True)
class RetrainingReady:
    """Enough new human labels have accumulated for a model to be worth retraining on."""

    model_id: int
    model_name: str
    at: dt.datetime
    new_labels: int  # labels since the last time this was raised
    total_labels: int
    since: dt.datetime | None  # when it was last raised (None: the first time)
    export_path: str  # GET this (with ?since=) for the labels


@dataclass(frozen=True)
class Resolved:
    """A resolved ticket, and whether its labels made the model's retraining data ready."""

    ticket: Ticket
    retraining_ready: RetrainingReady | None = None


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
        raise lost(session, ticket_id=ticket_id, actor=actor, lease_token=lease_token, now=now)
    repository.insert_events(
        session, [event_row(ticket.id, "dismiss", actor.name, "claimed", now, {"reason": reason})]
    )
    return ticket


def resolve(
    session: Session,
    *,
    ticket_id: int,
    actor: Actor,
    lease_token: str | None,
    labels: Sequence[LabelIn],
    note: str | None,
    now: dt.datetime,
) -> Resolved:
    """Finish a held ticket with the human's label(s); they become retraining data.

    A ticket about one prediction takes exactly one label; a drift or
    data-quality ticket takes labels for any of its sampled predictions (or none).
    """
    asked = _as_asked(labels, note)
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
        raise lost(session, ticket_id=ticket_id, actor=actor, lease_token=lease_token, now=now)
    model = repository.label_schema(session, ticket.model_id)
    pairs = _labelled_predictions(session, model=model, ticket=ticket, labels=labels)
    resolution = {"note": note, **_resolution_labels(ticket, pairs)}
    if resolution != asked:  # checking the labels normalised them
        ticket.resolution = resolution
    repository.insert_events(
        session, [event_row(ticket.id, "resolve", actor.name, "claimed", now, ticket.resolution)]
    )
    fresh = _store(
        session, model=model, ticket=ticket, pairs=pairs, actor=actor, note=note, now=now
    )
    ready = _count_labels(session, model=model, added=fresh, now=now) if fresh else None
    return Resolved(ticket, ready)


def _as_asked(labels: Sequence[LabelIn], note: str | None) -> dict[str, Any]:
    """The resolution as the reviewer sent it (written first, normalised later if need be)."""
    if len(labels) == 1 and labels[0].prediction_id is None:
        return {"note": note, "label": labels[0].label}
    return {
        "note": note,
        "labels": [{"prediction_id": x.prediction_id, "label": x.label} for x in labels],
    }


def _store(
    session: Session,
    *,
    model: LabelSchema,
    ticket: Ticket,
    pairs: Sequence[tuple[Target, Any]],
    actor: Actor,
    note: str | None,
    now: dt.datetime,
) -> int:
    """Store the labels the way the ticket's kind asks; returns how many are new training data."""
    if ticket.kind == "second_review":
        return qc.second_review(
            session, model=model, ticket=ticket, pairs=pairs, actor=actor, now=now
        )
    if ticket.kind == "adjudication":
        return qc.adjudicate(session, ticket=ticket, pairs=pairs, actor=actor, note=note, now=now)
    store_labels(session, ticket=ticket, pairs=pairs, actor=actor, note=note, now=now)
    if ticket.kind in REVIEWABLE and pairs:
        qc.maybe_second_review(session, model=model, ticket=ticket, pairs=pairs, now=now)
    return len(pairs)


def _resolution_labels(ticket: Ticket, pairs: Sequence[tuple[Target, Any]]) -> dict[str, Any]:
    if ticket.kind in SINGLE:
        return {"label": pairs[0][1]} if pairs else {}
    return {"labels": [{"prediction_id": p.client_id, "label": v} for p, v in pairs]}


def _checked(model: LabelSchema, value: object, loc: list[str | int]) -> str | float:
    try:
        return valid_label(model, value)
    except LabelRefused as refused:
        raise InvalidInput.at(loc, str(refused)) from None


def _labelled_predictions(
    session: Session, *, model: LabelSchema, ticket: Ticket, labels: Sequence[LabelIn]
) -> list[tuple[Target, Any]]:
    """Check the labels against the ticket and the model; returns (prediction, label)."""
    if ticket.kind in SINGLE:
        return [_single_label(model, ticket, labels)]
    if any(item.prediction_id is None for item in labels):
        raise InvalidInput.at(
            ["label"],
            f"a {ticket.kind} ticket covers several predictions: send "
            '{"labels": [{"prediction_id": ..., "label": ...}]} naming one of them each',
        )
    rows = repository.predictions_by_client_id(session, list(ticket.prediction_ids))
    pairs: list[tuple[Target, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(labels):
        assert item.prediction_id is not None
        prediction = rows.get(item.prediction_id)
        if prediction is None:
            raise InvalidInput.at(
                ["labels", i, "prediction_id"],
                f"{item.prediction_id!r} is not one of the predictions of ticket {ticket.id} "
                f"({sorted(rows)})",
            )
        if item.prediction_id in seen:
            raise InvalidInput.at(["labels", i, "prediction_id"], "labelled twice")
        seen.add(item.prediction_id)
        target = Target(prediction.id, prediction.client_id)
        pairs.append((target, _checked(model, item.label, ["labels", i, "label"])))
    return pairs


def _single_label(
    model: LabelSchema, ticket: Ticket, labels: Sequence[LabelIn]
) -> tuple[Target, Any]:
    """The one label of a ticket about one prediction."""
    if len(labels) != 1:
        raise InvalidInput.at(
            ["label"], f"a {ticket.kind} ticket is resolved with exactly one label"
        )
    given = labels[0]
    loc: list[str | int] = ["label"] if given.prediction_id is None else ["labels", 0, "label"]
    value = _checked(model, given.label, loc)
    if ticket.prediction_id is None or ticket.client_id is None:
        raise TicketConflict(
            f"the prediction of ticket {ticket.id} is no longer stored (retention): "
            "dismiss the ticket instead"
        )
    target = Target(ticket.prediction_id, ticket.client_id)
    if given.prediction_id is not None and given.prediction_id != target.client_id:
        raise InvalidInput.at(
            ["labels", 0, "prediction_id"],
            f"ticket {ticket.id} is about prediction {target.client_id!r}",
        )
    return target, value


def _count_labels(
    session: Session, *, model: LabelSchema, added: int, now: dt.datetime
) -> RetrainingReady | None:
    """Count new labels; says so when the model's retraining threshold was reached."""
    threshold = options_of(model).retraining_ready_labels
    if threshold is None:
        # The counter row is one per model, so every resolve of the model would queue
        # on its row lock; it is only kept while someone wants the notice.
        return None
    reached = repository.count_labels(
        session, model_id=model.id, added=added, now=now, threshold=threshold
    )
    if reached is None:
        return None
    new, total, since = reached
    return RetrainingReady(
        model_id=model.id,
        model_name=model.name,
        at=now,
        new_labels=new,
        total_labels=total,
        since=since,
        export_path=f"/v1/models/{model.name}/training-data",
    )
