"""Queue tables: tickets, their events, labels, and the small tables beside them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UTCDateTime
from storage.tables import BigIntPK

_ACTIVE = text("status IN ('open', 'claimed')")


class Ticket(Base):
    """Something a machine should not decide alone, waiting for (or with) a reviewer.

    ``group_key`` makes creation idempotent: ``pred:<prediction id>`` for a ticket
    about one prediction, ``dq:<feature>:<hour>`` for a data-quality group,
    ``incident:<id>`` for drift, ``review:<ticket>`` / ``adj:<ticket>`` for label QC.
    """

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("model_id", "kind", "group_key"),
        # the claim's scan: waiting tickets in queue order, nothing else
        Index(
            "ix_tickets_queue",
            text("priority DESC"),
            "created_at",
            "id",
            postgresql_where=_ACTIVE,
            sqlite_where=_ACTIVE,
        ),
        Index("ix_tickets_model_id_status", "model_id", "status"),
        Index("ix_tickets_created_at_id", "created_at", "id"),
        Index("ix_tickets_claimed_by", "claimed_by"),
        Index("ix_tickets_subject_ticket_id", "subject_ticket_id"),
        Index("ix_tickets_resolved_at", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    group_key: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer)
    # why it exists, for people ("confidence 0.41 below 0.6")
    reason: Mapped[str] = mapped_column(Text)
    # the rule's evidence: values, thresholds, counts, examples, drift context
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the prediction a per-prediction ticket is about (raw rows are retention-bounded)
    prediction_id: Mapped[int | None] = mapped_column(
        ForeignKey("predictions.id", ondelete="SET NULL"), default=None
    )
    # the client id of that prediction (what users know it by), kept for display
    client_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # data-quality groups and drift samples: the predictions a reviewer may label
    prediction_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # the sampling design: the probability with which this ticket's record was chosen
    # (flagged: 1, or less when the hourly budget suppressed some of its stratum; audit:
    # the audit rate in force, times the same) and the population stratum it was chosen
    # from. NULL probability: not a probability sample (drift samples, feedback mismatch,
    # data quality), never mixed into the audited estimate.
    inclusion_probability: Mapped[float | None] = mapped_column(Float, default=None)
    sampling_stratum: Mapped[str | None] = mapped_column(String(30), default=None)
    # second review / adjudication: the ticket whose label is being checked
    subject_ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), default=None
    )
    # a key that may not claim it (the first reviewer, for an independent second review)
    excluded_key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    count: Mapped[int] = mapped_column(Integer, default=1)
    lease_token: Mapped[str | None] = mapped_column(String(32), default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(32), default=None)
    claimed_by_name: Mapped[str | None] = mapped_column(String(250), default=None)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # claims given up without finishing (released, or lease expired): drives escalation
    abandon_count: Mapped[int] = mapped_column(Integer, default=0)
    last_abandoned_by: Mapped[str | None] = mapped_column(String(250), default=None)
    last_abandoned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(32), default=None)
    resolved_by_name: Mapped[str | None] = mapped_column(String(250), default=None)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # {"label"|"labels", "note"} or {"reason"}
    resolution: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    # second review only: did it agree with the subject's label?
    qc_agreed: Mapped[bool | None] = mapped_column(Boolean, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class TicketEvent(Base):
    """One transition of one ticket: the audit trail."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_id_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(250))
    from_status: Mapped[str | None] = mapped_column(String(20), default=None)
    to_status: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Label(Base):
    """A human's label for one prediction: the retraining data.

    ``status`` is ``current`` (exported), ``disputed`` (a second review disagreed;
    waiting for adjudication), ``superseded`` (replaced by ``superseded_by``: an
    adjudication, or the confirmed original of an agreeing second review) or
    ``retracted`` (its resolution was undone).
    """

    __tablename__ = "labels"
    __table_args__ = (
        Index("ix_labels_export", "model_id", "status", "labelled_at", "id"),
        Index("ix_labels_ticket_id", "ticket_id"),
        Index("ix_labels_prediction_id", "prediction_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    prediction_id: Mapped[int | None] = mapped_column(
        ForeignKey("predictions.id", ondelete="SET NULL")
    )
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    ticket_kind: Mapped[str] = mapped_column(String(30))
    label: Mapped[Any] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    source: Mapped[str] = mapped_column(String(20))  # review | second_review | adjudication
    status: Mapped[str] = mapped_column(String(20))
    labelled_by: Mapped[str] = mapped_column(String(32))
    labelled_by_name: Mapped[str] = mapped_column(String(250))
    labelled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    superseded_by: Mapped[int | None] = mapped_column(
        ForeignKey("labels.id", ondelete="SET NULL"), default=None
    )


class TicketVolume(Base):
    """Tickets opened and suppressed (not drawn by the budget), per model, kind and hour.

    ``expected`` is the budget this hour's candidates of the kind spent in
    expectation: the sum of their inclusion probabilities (exceptions_queue.sampling).

    Partial rows, like ``block_counts``: each transaction that opens tickets
    inserts its own (no row is updated, so concurrent ingest transactions of one
    model never wait on each other for it), readers sum them, and
    :func:`exceptions_queue.repository.compact_volume` merges an hour's rows.
    """

    __tablename__ = "ticket_volume"
    __table_args__ = (Index("ix_ticket_volume_model_id_hour_kind", "model_id", "hour", "kind"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(30))
    opened: Mapped[int] = mapped_column(BigInteger, default=0)
    suppressed: Mapped[int] = mapped_column(BigInteger, default=0)
    expected: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))


class SampleDraw(Base):
    """One record a budget considered: its value, inclusion probability, and whether drawn.

    Written for every flagged record of a model with a label budget (a drawn one
    also has its ticket); the tickets of records outside the budget carry their
    probability themselves. Retention's deletion of a raw prediction takes its draw
    with it; the budget spent stays in ``ticket_volume.expected``.
    """

    __tablename__ = "sample_draws"
    __table_args__ = (Index("ix_sample_draws_model_id_at", "model_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    prediction_id: Mapped[int] = mapped_column(
        ForeignKey("predictions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    stratum: Mapped[str] = mapped_column(String(30))
    value: Mapped[float | None] = mapped_column(Float, default=None)
    inclusion_probability: Mapped[float] = mapped_column(Float)
    sampled: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LabelCounter(Base):
    """Labels per model, and how many arrived since 'retraining data ready' was last raised."""

    __tablename__ = "label_counters"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    last_ready_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class QualityDeferred(Base):
    """A batch's data-quality groups not yet merged into the hour's group tickets.

    Written (append-only) by an ingest transaction that found the model's
    ``TICKETS`` advisory lock held: it does not wait for the merge. Whoever next
    holds the lock (the model's next batch with data-quality breaks, or the
    ``quality-fold`` background step) takes the rows and merges each under its
    own ``hour`` (exceptions_queue.opening.fold_quality_groups). Never written on
    SQLite, whose writers are serialised anyway.
    """

    __tablename__ = "quality_deferred"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    # the hour the batch was stored in: its breaks count in that hour's tickets
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # [{"feature", "counts": {rule: n}, "examples": [...]}], as QualityGroup
    groups: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
