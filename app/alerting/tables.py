"""Alerting tables: channels, alerts, the delivery outbox, attempts, silences.

An *alert* is one episode of one rule for one subject (a drift incident, a
stretch of a queue over its SLA, a broken channel): its firing, reminder and
resolved notifications share its ``dedup_key``. Each notification to each
channel is one *delivery*, the outbox row the dispatcher claims, sends and
marks; its ``webhook_id`` is the same on every attempt. Each attempt leaves an
*attempt* row, so ``GET /v1/alerts`` shows the whole history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
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

_FIRING = text("status = 'firing'")
_DUE = text("status IN ('pending', 'sending')")


class AlertChannel(Base):
    """Where alerts go: a Slack incoming webhook, email recipients, or a signed webhook.

    ``target`` and ``secrets`` are credentials (a Slack hook's path is its
    token): the API shows a redacted target and never a secret.
    """

    __tablename__ = "alert_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # slack | email | webhook
    target: Mapped[str] = mapped_column(Text)
    # model names this channel hears about; None = every model (and the service's own alerts)
    models: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), default=None)
    min_severity: Mapped[str] = mapped_column(String(10))
    # webhook signing secrets, newest first: every one signs during a rotation
    secrets: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), default=None)
    # rate limit: at most one message per this many seconds, across every dispatcher
    min_interval_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    next_send_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    disabled_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Alert(Base):
    """One episode of one rule for one subject.

    ``group_key`` names the subject (``drift.incident:churn``) and at most one
    alert per group is firing (a partial unique index), so concurrent rule
    runs cannot raise the same thing twice; ``dedup_key`` adds the episode
    (``drift.incident:churn:42``) and is unique for ever.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_group_key_firing",
            "group_key",
            unique=True,
            postgresql_where=_FIRING,
            sqlite_where=_FIRING,
        ),
        Index("ix_alerts_created_at_id", "created_at", "id"),
        Index("ix_alerts_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    group_key: Mapped[str] = mapped_column(String(300))
    rule: Mapped[str] = mapped_column(String(100))
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("models.id", ondelete="SET NULL"), default=None
    )
    model_name: Mapped[str | None] = mapped_column(String(200), default=None)
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))  # firing | resolved
    # a notice (retraining data ready) is resolved as it is raised: no reminders
    notice: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"title", "summary", "fields": [[name, value]], "links": {name: url}}, and the
    # resolved message's "resolved_title", "resolved_summary", "resolved_fields"
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # a channel told about this alert is never told again by its own failure report
    exclude_channel_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class AlertDelivery(Base):
    """One notification of one alert to one channel: the outbox row.

    ``pending`` → (claimed) ``sending`` → ``delivered`` | ``pending`` (retry) |
    ``dead``. While ``sending``, ``next_attempt_at`` is the lease's expiry: a
    dispatcher that died mid-send leaves the row due again then, and the next
    claim re-sends it with the same ``webhook_id``.
    """

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "channel_id", "notification", "repeat"),
        Index(
            "ix_alert_deliveries_due", "next_attempt_at", postgresql_where=_DUE, sqlite_where=_DUE
        ),
        Index("ix_alert_deliveries_channel_id_status", "channel_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_channels.id", ondelete="SET NULL")
    )
    channel_name: Mapped[str] = mapped_column(String(100))
    notification: Mapped[str] = mapped_column(String(10))  # firing | reminder | resolved
    repeat: Mapped[int] = mapped_column(Integer, default=0)
    # the message as sent, fixed when the delivery is written: a re-send is byte-identical
    message: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10))  # pending | sending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(32), default=None)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_response: Mapped[str | None] = mapped_column(Text, default=None)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    dead_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    replays: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AlertAttempt(Base):
    """One try of one delivery, as the receiver answered it."""

    __tablename__ = "alert_attempts"
    __table_args__ = (Index("ix_alert_attempts_delivery_id_id", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("alert_deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(20))  # delivered | retry | dead | disable_channel
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    retry_after: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    response: Mapped[str | None] = mapped_column(Text, default=None)


class AlertSilence(Base):
    """Mute a model or a rule (or both) on one channel, or on every channel, until a time."""

    __tablename__ = "alert_silences"
    __table_args__ = (Index("ix_alert_silences_until", "until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_channels.id", ondelete="CASCADE"), default=None
    )
    model_name: Mapped[str | None] = mapped_column(String(200), default=None)
    rule: Mapped[str | None] = mapped_column(String(100), default=None)
    until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(250))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
