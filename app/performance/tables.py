"""Performance tables: per-block partial sums, the fitted reference, labels counted, incidents."""

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
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UTCDateTime, utcnow
from storage.tables import BigIntPK


class PerformancePart(Base):
    """Partial sums of one block (one window step) for one model version.

    Like ``block_counts``, writers only ever insert parts (ingest: the stratum
    populations and the label-free sums; a label arriving, changing or being
    withdrawn: the difference it makes to the realized or audited sums), so
    concurrent writers never lose a sum; a window is the sum of its blocks' parts,
    and the evaluator compacts a finished block's parts into one row per kind.
    """

    __tablename__ = "performance_parts"
    # covering: a window read takes these columns without the rows' sums (which come
    # from the decoded-part cache, app.performance.service.read_parts)
    __table_args__ = (
        Index(
            "ix_performance_parts_read",
            "model_id",
            "block",
            "kind",
            "model_version",
            "reference_id",
            "first_ts",
            "last_ts",
            "created_at",
            "id",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    block: Mapped[int] = mapped_column(BigInteger)
    # "" when the records gave no model_version (so one equality finds them)
    model_version: Mapped[str] = mapped_column(String(100))
    # population | estimated | realized | audited
    kind: Mapped[str] = mapped_column(String(20))
    # the reference whose calibration the label-free sums used (kind "estimated")
    reference_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # the monitors.performance sums object's to_json()
    sums: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the records' time span (population parts), for the window's start and end
    first_ts: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_ts: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PerformanceReference(Base):
    """What a reference says about performance: the fitted calibration and its own metrics.

    Fitted when the reference is set, except DLE's loss models (seconds to minutes):
    the upload stores what they need (``fit_data``, status ``fitting``) and a
    background step fits them (:mod:`app.performance.fit_step`). ``spec``
    (classification: classes, score bins, the CBPE calibration) or ``loss_model``
    (regression: DLE) are NULL when the reference lacks what they need (``note``
    says what); the label-free estimate is then null.
    """

    __tablename__ = "performance_references"

    reference_id: Mapped[int] = mapped_column(
        ForeignKey("model_references.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    loss_model: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # the reference's own metrics (from its labels): {"accuracy": 0.94, ...}
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    labelled_rows: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    # ready | fitting (DLE's loss models are fitted by a background step from fit_data,
    # the reference's features, predictions and labels, taken off the upload's request)
    status: Mapped[str] = mapped_column(
        String(20), default="ready", server_default="ready", index=True
    )
    fit_data: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PerformanceLabel(Base):
    """The human label a prediction currently adds to the audited sums, and how.

    Reviewers' labels change state in several ways (a second review, an
    adjudication, an undo); keeping what each prediction contributes lets a change
    take exactly its old contribution out and put its new one in, in proportion to
    the labels changed.
    """

    __tablename__ = "performance_labels"

    prediction_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    block: Mapped[int] = mapped_column(BigInteger)
    model_version: Mapped[str] = mapped_column(String(100))
    stratum: Mapped[str] = mapped_column(String(30))
    inclusion_probability: Mapped[float] = mapped_column(Float)
    label: Mapped[Any] = mapped_column(JSON)
    # the model's output it is compared with (kept: raw rows are retention-bounded)
    prediction: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PerformanceLabelChange(Base):
    """A prediction whose human label changed and whose audited sums are not yet moved.

    Resolving a ticket only notes its predictions here (one insert); the sums
    move in batches (:func:`app.performance.labels.sync_pending`) before any read
    of a model's performance and in the evaluator's step, so a reviewer's
    resolve does not pay for the estimate's bookkeeping.
    """

    __tablename__ = "performance_label_changes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    prediction_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PerformanceEvaluation(Base):
    """One finished window judged against the model's performance settings."""

    __tablename__ = "performance_evaluations"
    __table_args__ = (UniqueConstraint("model_id", "last_block"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    first_block: Mapped[int] = mapped_column(BigInteger)
    last_block: Mapped[int] = mapped_column(BigInteger)
    window_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    window_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # ok | degraded | insufficient_data (no estimate to judge, or no settings)
    status: Mapped[str] = mapped_column(String(20))
    degraded: Mapped[bool] = mapped_column(Boolean)
    # the window as GET /performance showed it when judged
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    incident_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("performance_incidents.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PerformanceIncident(Base):
    """A run of degraded windows: opened and closed with the drift incidents' debounce."""

    __tablename__ = "performance_incidents"
    __table_args__ = (Index("ix_performance_incidents_model_id_status", "model_id", "status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10))  # open | closed
    severity: Mapped[str] = mapped_column(String(10))  # warning | critical
    metric: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))  # realized | audited | estimated
    value: Mapped[float | None] = mapped_column(Float, default=None)
    bound: Mapped[float | None] = mapped_column(Float, default=None)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    first_block: Mapped[int] = mapped_column(BigInteger)
    last_block: Mapped[int] = mapped_column(BigInteger)
    opened_evaluation_id: Mapped[int] = mapped_column(BigInteger)
    last_evaluation_id: Mapped[int] = mapped_column(BigInteger)
    closed_evaluation_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    evaluations: Mapped[int] = mapped_column(Integer, default=1)
    clean_streak: Mapped[int] = mapped_column(Integer, default=0)
    # labels are needed to decide it (the performance evaluator says, at each judged
    # window); while they are, ingest raises the model's audit rate within its budget
    needs_labels: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    labels_note: Mapped[str | None] = mapped_column(Text, default=None)
