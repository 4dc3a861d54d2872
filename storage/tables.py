"""Core tables: API keys, monitored models, references, predictions, window blocks."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

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
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UTCDateTime, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for rows
# that grow without bound.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class MonitoredModel(Base):
    """A deployed model driftdesk watches: its schema, window and exception rules."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task: Mapped[str] = mapped_column(String(20))
    features: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    labels: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), default=None)
    window: Mapped[dict[str, Any]] = mapped_column(JSON)
    confidence_threshold: Mapped[float | None] = mapped_column(Float, default=None)
    drift: Mapped[dict[str, Any]] = mapped_column(JSON)
    strict: Mapped[bool] = mapped_column(Boolean, default=True)
    # the performance metric watched and its bounds (schemas.PerformanceSettings); NULL: none
    performance: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), default=None
    )
    # knobs that API.md leaves open (incident debounce, ticket budget, audit rate, ...)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="active")
    # records accepted so far: the sequence number that places records in count blocks
    record_count: Mapped[int] = mapped_column(BigInteger, default=0)
    reference_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_references.id", use_alter=True, ondelete="SET NULL"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class LabelSchema(Protocol):
    """What checking and counting human labels reads of a model: a
    :class:`MonitoredModel`, or a Core row of these columns (the queue's resolve
    reads only them, not the whole model)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def labels(self) -> list[str] | None: ...
    @property
    def options(self) -> dict[str, Any]: ...


class Reference(Base):
    """A baseline: its summary, its sketch (bin edges + counts) and a bounded sample."""

    __tablename__ = "model_references"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(20))  # json | csv | parquet | window
    rows: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    sketch: Mapped[dict[str, Any]] = mapped_column(JSON)
    counts: Mapped[bytes] = mapped_column(LargeBinary)
    # Parquet bytes of at most `reference_sample_rows` rows, for Evidently reports.
    sample: Mapped[bytes] = mapped_column(LargeBinary)
    window_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    window_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Prediction(Base):
    """One prediction as the deployed model posted it (raw rows, retention-bounded)."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("model_id", "client_id"),
        Index("ix_predictions_model_ts", "model_id", "ts"),
        Index("ix_predictions_model_seq", "model_id", "seq"),
        # ground truth in the order it arrived (the training-data export); rows without
        # any are not in the index, so ingest does not pay for it
        Index(
            "ix_predictions_model_actual_at",
            "model_id",
            "actual_at",
            "id",
            postgresql_where=text("actual_at IS NOT NULL"),
            sqlite_where=text("actual_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(200))
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    prediction: Mapped[Any] = mapped_column(JSON)
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    probabilities: Mapped[dict[str, float] | None] = mapped_column(
        JSON(none_as_null=True), default=None
    )
    model_version: Mapped[str | None] = mapped_column(String(100), default=None)
    # ground truth that arrived later (POST /feedback)
    actual: Mapped[Any | None] = mapped_column(JSON(none_as_null=True), default=None)
    actual_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class BlockCounts(Base):
    """Sketch counts of one block (one window step), against one reference's bins.

    Writers only ever insert partial rows, so concurrent ingests (several API
    replicas) never lose counts; the evaluator sums them and may compact a
    finished block's partials into one row.
    """

    __tablename__ = "block_counts"
    __table_args__ = (Index("ix_block_counts_lookup", "model_id", "reference_id", "block"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    reference_id: Mapped[int] = mapped_column(ForeignKey("model_references.id", ondelete="CASCADE"))
    block: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    counts: Mapped[bytes] = mapped_column(LargeBinary)
    first_ts: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_ts: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # exact mean confidence of the part, for the online change detector
    confidence_sum: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    confidence_rows: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
