"""The transactional outbox: alerts and their deliveries, written in the caller's transaction.

Rules call :func:`fire` and :func:`resolve` inside the transaction that
changed state (an incident opening, a queue going over its SLA), so the alert
and its deliveries commit with the change or not at all. Nothing here sends:
the dispatcher (:mod:`app.alerting.dispatcher`) claims the rows and sends them.

Grouping, in the manner of Alertmanager:

- an alert is one *episode* of a rule for a subject; ``dedup_key`` (unique)
  names it, ``group_key`` names the subject, and at most one alert per
  ``group_key`` fires at a time (a partial unique index), so raising the same
  thing twice, from two processes at once, writes it once;
- each channel gets one firing message per alert, then a reminder only after
  the repeat interval (:func:`remind`), and one resolved message, which goes
  only to the channels that were told it was firing;
- silences and channel filters (models, minimum severity) are applied when a
  notification is written; a channel silenced when the alert fired hears of it
  at the first reminder run after the silence ends.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import case, delete, func, select, type_coerce, update
from sqlalchemy.orm import Session

from app.alerting.message import AlertMessage, Severity, format_timestamp, severity_rank
from app.alerting.tables import Alert, AlertChannel, AlertDelivery, AlertSilence
from storage.base import UTCDateTime
from storage.sql import upsert

log = logging.getLogger("driftdesk.alerting")

Notification = Literal["firing", "reminder", "resolved"]
UNSENT: Final = ("pending", "sending")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSpec:
    """What a rule raises: one episode of ``rule`` for ``subject``.

    ``subject`` says what the alert is about within the rule (a model name, a
    channel name) and ``episode`` which stretch of it (an incident id, the time
    the queue went over its SLA), so ``dedup_key`` is stable across retries of
    the raising transaction and new for a new episode.
    """

    rule: str
    subject: str
    episode: str
    severity: Severity
    title: str
    summary: str
    model_id: int | None = None
    model_name: str | None = None
    fields: Sequence[tuple[str, str]] = ()
    links: Mapping[str, str] = field(default_factory=dict)
    notice: bool = False
    exclude_channel_id: int | None = None

    @property
    def group_key(self) -> str:
        return f"{self.rule}:{self.subject}"

    @property
    def dedup_key(self) -> str:
        return f"{self.group_key}:{self.episode}"


def new_webhook_id() -> str:
    """A delivery's ``webhook-id``: ``msg_`` and 24 URL-safe characters (no full stop)."""
    return "msg_" + secrets.token_urlsafe(18)


# --------------------------------------------------------------------------- messages
def _message(
    alert: Alert, notification: Notification, *, repeat: int, now: dt.datetime
) -> dict[str, Any]:
    """The stored form of one notification (see :func:`to_message`)."""
    p = alert.payload
    resolved = notification == "resolved"
    return {
        "dedup_key": alert.dedup_key,
        "rule": alert.rule,
        "model": alert.model_name,
        "severity": alert.severity,
        "status": "resolved" if resolved else "firing",
        "title": p.get("resolved_title", p["title"]) if resolved else p["title"],
        "summary": p.get("resolved_summary", p["summary"]) if resolved else p["summary"],
        "fields": p.get("resolved_fields", p["fields"]) if resolved else p["fields"],
        "links": p["links"],
        "repeat": repeat,
        # "since" on a firing message or a reminder, "resolved at" on the resolve
        "occurred_at": format_timestamp(now if resolved else alert.created_at),
    }


def to_message(alert_id: int, stored: Mapping[str, Any]) -> AlertMessage:
    """The :class:`AlertMessage` of a delivery row's ``message``."""
    return AlertMessage(
        alert_id=str(alert_id),
        dedup_key=stored["dedup_key"],
        rule=stored["rule"],
        model=stored["model"],
        severity=stored["severity"],
        status=stored["status"],
        title=stored["title"],
        summary=stored["summary"],
        occurred_at=dt.datetime.fromisoformat(stored["occurred_at"].replace("Z", "+00:00")),
        fields=[(str(n), str(v)) for n, v in stored["fields"]],
        links=stored["links"],
        repeat=stored["repeat"],
    )


# --------------------------------------------------------------------------- routing
def _silenced(
    silences: Iterable[AlertSilence], channel: AlertChannel, *, model: str | None, rule: str
) -> bool:
    return any(
        (s.channel_id is None or s.channel_id == channel.id)
        and (s.model_name is None or s.model_name == model)
        and (s.rule is None or s.rule == rule)
        for s in silences
    )


def _wants(channel: AlertChannel, alert: Alert) -> bool:
    if alert.exclude_channel_id == channel.id:
        return False
    if severity_rank(alert.severity) < severity_rank(channel.min_severity):  # type: ignore[arg-type]
        return False
    # An alert about the service itself (a broken channel) has no model: every channel hears it.
    return channel.models is None or alert.model_name is None or alert.model_name in channel.models


def routes(session: Session, alert: Alert, *, now: dt.datetime) -> list[AlertChannel]:
    """The channels that should hear of ``alert`` now: enabled, matching, not silenced."""
    channels = session.scalars(
        select(AlertChannel).where(AlertChannel.disabled_at.is_(None)).order_by(AlertChannel.id)
    ).all()
    silences = session.scalars(select(AlertSilence).where(AlertSilence.until > now)).all()
    return [
        c
        for c in channels
        if _wants(c, alert) and not _silenced(silences, c, model=alert.model_name, rule=alert.rule)
    ]


def _add_deliveries(
    session: Session,
    alert: Alert,
    channels: Iterable[AlertChannel],
    notification: Notification,
    *,
    repeat: int,
    now: dt.datetime,
) -> int:
    rows = [
        {
            "webhook_id": new_webhook_id(),
            "alert_id": alert.id,
            "channel_id": c.id,
            "channel_name": c.name,
            "notification": notification,
            "repeat": repeat,
            "message": _message(alert, notification, repeat=repeat, now=now),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for c in channels
    ]
    if not rows:
        return 0
    # (alert, channel, notification, repeat) is unique: two reminder runs racing write one.
    # One statement per row: the count of rows written must exclude conflicts, and
    # a notification goes to a handful of channels.
    stmt = upsert(session, AlertDelivery).on_conflict_do_nothing().returning(AlertDelivery.id)
    return sum(len(session.execute(stmt.values(**row)).all()) for row in rows)


# --------------------------------------------------------------------------- raising
def fire(session: Session, spec: AlertSpec, *, now: dt.datetime) -> Alert | None:
    """Write the alert and one firing delivery per channel that wants it.

    Returns ``None`` (and writes nothing) when the episode was raised before,
    or when another episode of the same subject is still firing.
    """
    payload = {
        "title": spec.title,
        "summary": spec.summary,
        "fields": [[n, v] for n, v in spec.fields],
        "links": dict(spec.links),
    }
    stmt = (
        upsert(session, Alert)
        .values(
            dedup_key=spec.dedup_key,
            group_key=spec.group_key,
            rule=spec.rule,
            model_id=spec.model_id,
            model_name=spec.model_name,
            severity=spec.severity,
            # a notice has nothing to resolve: it is over as it is raised
            status="resolved" if spec.notice else "firing",
            notice=spec.notice,
            payload=payload,
            exclude_channel_id=spec.exclude_channel_id,
            created_at=now,
            resolved_at=now if spec.notice else None,
        )
        .on_conflict_do_nothing()
        .returning(Alert.id)
    )
    alert_id = session.execute(stmt).scalar_one_or_none()
    if alert_id is None:
        return None
    alert = session.get_one(Alert, alert_id)
    sent = _add_deliveries(
        session, alert, routes(session, alert, now=now), "firing", repeat=0, now=now
    )
    log.info(
        "alert fired",
        extra={"alert_id": alert.id, "dedup_key": alert.dedup_key, "deliveries": sent},
    )
    return alert


def resolve(
    session: Session,
    *,
    now: dt.datetime,
    dedup_key: str | None = None,
    group_key: str | None = None,
    title: str,
    summary: str,
    fields: Sequence[tuple[str, str]] = (),
) -> Alert | None:
    """Resolve the firing alert of ``dedup_key`` (or of ``group_key``) and tell its channels.

    The resolved message goes to every channel that was sent a firing message
    or a reminder (silenced since or not: a thread is never left open), if the
    channel is still enabled. Reminders not yet sent are dropped. Returns
    ``None`` when nothing of that key was firing.
    """
    if (dedup_key is None) == (group_key is None):
        raise ValueError("resolve by dedup_key or by group_key")
    key = Alert.dedup_key == dedup_key if dedup_key is not None else Alert.group_key == group_key
    alert_id = session.execute(
        update(Alert)
        .where(key, Alert.status == "firing")
        .values(status="resolved", resolved_at=now)
        .returning(Alert.id)
    ).scalar_one_or_none()
    if alert_id is None:
        return None
    alert = session.get_one(Alert, alert_id)
    session.refresh(alert)
    alert.payload = {
        **alert.payload,
        "resolved_title": title,
        "resolved_summary": summary,
        "resolved_fields": [[n, v] for n, v in fields],
    }
    session.execute(
        delete(AlertDelivery).where(
            AlertDelivery.alert_id == alert.id,
            AlertDelivery.notification == "reminder",
            AlertDelivery.status == "pending",
        )
    )
    told = select(AlertDelivery.channel_id).where(
        AlertDelivery.alert_id == alert.id, AlertDelivery.channel_id.is_not(None)
    )
    channels = session.scalars(
        select(AlertChannel)
        .where(AlertChannel.id.in_(told), AlertChannel.disabled_at.is_(None))
        .order_by(AlertChannel.id)
    ).all()
    sent = _add_deliveries(session, alert, channels, "resolved", repeat=0, now=now)
    log.info(
        "alert resolved",
        extra={"alert_id": alert.id, "dedup_key": alert.dedup_key, "deliveries": sent},
    )
    return alert


def firing(session: Session, *, group_key: str) -> Alert | None:
    """The firing alert of a subject, if any."""
    return session.scalar(
        select(Alert).where(Alert.group_key == group_key, Alert.status == "firing")
    )


def remind(session: Session, *, now: dt.datetime, repeat_interval: dt.timedelta) -> int:
    """Write the reminders (and late firing messages) that are due; returns how many.

    For each firing alert and each channel that wants it now: the firing
    message if the channel never had it (it was silenced, or is new), else a
    reminder once ``repeat_interval`` has passed since the last message, and
    never while an earlier one is still unsent (a channel that is down does not
    pile up reminders).
    """
    alerts = session.scalars(select(Alert).where(Alert.status == "firing").order_by(Alert.id)).all()
    if not alerts:
        return 0
    last: dict[tuple[int, int], tuple[int, dt.datetime, int]] = {}
    rows = session.execute(
        select(
            AlertDelivery.alert_id,
            AlertDelivery.channel_id,
            func.max(AlertDelivery.repeat),
            type_coerce(func.max(AlertDelivery.created_at), UTCDateTime()),
            func.sum(case((AlertDelivery.status.in_(UNSENT), 1), else_=0)),
        )
        .where(
            AlertDelivery.alert_id.in_([a.id for a in alerts]),
            AlertDelivery.channel_id.is_not(None),
        )
        .group_by(AlertDelivery.alert_id, AlertDelivery.channel_id)
    ).all()
    for alert_id, channel_id, repeat, created, unsent in rows:
        last[(alert_id, channel_id)] = (int(repeat), created, int(unsent or 0))
    written = 0
    for alert in alerts:
        for channel in routes(session, alert, now=now):
            previous = last.get((alert.id, channel.id))
            if previous is None:
                written += _add_deliveries(session, alert, [channel], "firing", repeat=0, now=now)
                continue
            repeat, sent_at, unsent = previous
            if unsent or now - sent_at < repeat_interval:
                continue
            written += _add_deliveries(
                session, alert, [channel], "reminder", repeat=repeat + 1, now=now
            )
    return written
