"""Drift tables: evaluations, incidents, cached calibrations, evaluator state."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UTCDateTime, utcnow
from storage.tables import BigIntPK


class DriftEvaluation(Base):
    """One window judged against one reference."""

    __tablename__ = "drift_evaluations"
    __table_args__ = (
        # a scheduled evaluation of a window step happens once, whoever runs it
        UniqueConstraint("model_id", "reference_id", "scheduled_block"),
        Index("ix_drift_evaluations_model_id_id", "model_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    reference_id: Mapped[int] = mapped_column(ForeignKey("model_references.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(20))  # scheduled | manual | confidence_change
    scheduled_block: Mapped[int | None] = mapped_column(BigInteger, default=None)
    first_block: Mapped[int] = mapped_column(BigInteger)
    last_block: Mapped[int] = mapped_column(BigInteger)
    window_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    window_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    rows: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # ok | drift | insufficient_data
    drifted: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("drift_incidents.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DriftIncident(Base):
    """A run of drifted windows, opened after k of m drifted evaluations, closed after q clean."""

    __tablename__ = "drift_incidents"
    __table_args__ = (Index("ix_drift_incidents_model_id_status", "model_id", "status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10))  # open | closed
    severity: Mapped[str] = mapped_column(String(10))  # warning | critical
    drifted_features: Mapped[list[str]] = mapped_column(JSON)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    opened_evaluation_id: Mapped[int] = mapped_column(BigInteger)
    last_evaluation_id: Mapped[int] = mapped_column(BigInteger)
    closed_evaluation_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    evaluations: Mapped[int] = mapped_column(Integer, default=1)
    clean_streak: Mapped[int] = mapped_column(Integer, default=0)
    # labels are needed to decide it (the performance evaluator says, at each judged
    # window); while they are, ingest raises the model's audit rate within its budget
    needs_labels: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    labels_note: Mapped[str | None] = mapped_column(Text, default=None)


class DriftCalibration(Base):
    """The effect null distributions of a reference at a window size (monitors.drift.calibrate)."""

    __tablename__ = "drift_calibrations"
    __table_args__ = (UniqueConstraint("reference_id", "config_key", "window_rows"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference_id: Mapped[int] = mapped_column(ForeignKey("model_references.id", ondelete="CASCADE"))
    config_key: Mapped[str] = mapped_column(String(64))
    window_rows: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EvaluatorState(Base):
    """Where the evaluator is for one model: the last scheduled block, the online detector."""

    __tablename__ = "evaluator_state"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    reference_id: Mapped[int | None] = mapped_column(Integer, default=None)
    last_block: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # Page–Hinkley on block-part mean confidence, and the last part it has seen
    online: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    last_part_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
