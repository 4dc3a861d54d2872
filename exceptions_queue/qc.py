"""Label quality control: independent second reviews and adjudication.

A sampled resolution gets a second review by someone else, blind to the first
label; agreement confirms the first label, disagreement disputes both and opens
an adjudication whose label supersedes them.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from exceptions_queue import repository
from exceptions_queue.events import Actor
from exceptions_queue.labels import labels_disagree, options_of
from exceptions_queue.opening import NewTicket, open_tickets
from exceptions_queue.tables import Label, Ticket
from storage.tables import LabelSchema, Prediction


@dataclass(frozen=True)
class Target:
    """A prediction being labelled: its row id and the client id users know it by."""

    id: int
    client_id: str


def label_row(
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


def store_labels(
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
            label_row(
                ticket, p, v, actor=actor, note=note, now=now, source=source, status="current"
            )
            for p, v in pairs
        ],
    )


def maybe_second_review(
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
                # the same record, chosen the same way: its label keeps the first one's weight
                inclusion_probability=ticket.inclusion_probability,
                sampling_stratum=ticket.sampling_stratum,
            )
        ],
        now=now,
    )


def second_review(
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
        store_labels(
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
    row = label_row(
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
    _open_adjudication(
        session, ticket=ticket, original=original, target=target, value=value, actor=actor, now=now
    )
    return 0


def _open_adjudication(
    session: Session,
    *,
    ticket: Ticket,
    original: Label,
    target: Target,
    value: Any,
    actor: Actor,
    now: dt.datetime,
) -> None:
    """Two reviewers disagree: a third one decides (the first reviewers' labels are disputed)."""
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
                inclusion_probability=ticket.inclusion_probability,
                sampling_stratum=ticket.sampling_stratum,
            )
        ],
        now=now,
    )


def adjudicate(
    session: Session,
    *,
    ticket: Ticket,
    pairs: Sequence[tuple[Target, Any]],
    actor: Actor,
    note: str | None,
    now: dt.datetime,
) -> int:
    """The adjudicated label supersedes the disputed ones: it is the one exported."""
    store_labels(
        session, ticket=ticket, pairs=pairs, actor=actor, note=note, now=now, source="adjudication"
    )
    return 1
