"""Alert channels, alerts, replays and silences as the API works them. Never commits."""

from __future__ import annotations

import datetime as dt
import secrets
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from app.alerting.channels import ChannelKind, redact_target, send, validate_secret, validate_target
from app.alerting.dispatcher import disable_channel, http_client, smtp_config
from app.alerting.message import make_test_message
from app.alerting.schemas import (
    AlertOut,
    AttemptOut,
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    DeliveryOut,
    SilenceCreate,
    SilenceOut,
    TestResult,
    fields_out,
)
from app.alerting.tables import Alert, AlertAttempt, AlertChannel, AlertDelivery, AlertSilence
from app.alerting.targets import InvalidTargetError
from app.errors import Conflict, NotFound, ValidationFailed
from app.settings import Settings


# --------------------------------------------------------------------------- channels
def channel_out(c: AlertChannel) -> ChannelOut:
    return ChannelOut(
        name=c.name,
        kind=c.kind,
        target=redact_target(cast(ChannelKind, c.kind), c.target),
        models=c.models,
        min_severity=c.min_severity,
        signing_secrets=len(c.secrets or ()),
        min_interval_seconds=c.min_interval_seconds,
        enabled=c.disabled_at is None,
        disabled_at=c.disabled_at,
        disabled_reason=c.disabled_reason,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def get_channel(session: Session, name: str) -> AlertChannel:
    channel = session.scalar(select(AlertChannel).where(AlertChannel.name == name))
    if channel is None:
        raise NotFound(f"no alert channel named {name!r}")
    return channel


def _target(kind: ChannelKind, target: str, *, settings: Settings) -> str:
    try:
        return validate_target(kind, target, allow_private=settings.allow_private_targets)
    except InvalidTargetError as exc:
        raise ValidationFailed.at(["target"], str(exc)) from None


def _secrets(kind: ChannelKind, values: list[str] | None, *, field: str) -> list[str] | None:
    try:
        if values is None:
            validate_secret(kind, None)
        for value in values or ():
            validate_secret(kind, value)
    except ValueError as exc:
        # the message names what is wrong with a secret, never the secret
        raise ValidationFailed.at([field], str(exc)) from None
    return values


def create_channel(
    session: Session, *, body: ChannelCreate, settings: Settings, now: dt.datetime
) -> AlertChannel:
    """Check and store a new channel (409 if the name is taken)."""
    if session.scalar(select(AlertChannel.id).where(AlertChannel.name == body.name)) is not None:
        raise Conflict(f"an alert channel named {body.name!r} exists already")
    target = _target(body.kind, body.target, settings=settings)
    field = "secrets" if body.secrets is not None else "secret"
    values = _secrets(body.kind, body.secret_list(), field=field)
    interval = body.min_interval_seconds
    if interval is None:
        interval = settings.alert_slack_min_interval_seconds if body.kind == "slack" else 0.0
    channel = AlertChannel(
        name=body.name,
        kind=body.kind,
        target=target,
        models=body.models,
        min_severity=body.min_severity,
        secrets=values,
        min_interval_seconds=interval,
        created_at=now,
        updated_at=now,
    )
    session.add(channel)
    session.flush()
    return channel


def update_channel(
    session: Session,
    *,
    name: str,
    body: ChannelUpdate,
    settings: Settings,
    actor: str,
    now: dt.datetime,
) -> AlertChannel:
    channel = get_channel(session, name)
    kind: ChannelKind = channel.kind  # type: ignore[assignment]
    given = body.model_fields_set
    if body.target is not None:
        channel.target = _target(kind, body.target, settings=settings)
    if "models" in given:
        channel.models = body.models
    if body.min_severity is not None:
        channel.min_severity = body.min_severity
    if body.secret is not None or body.secrets is not None:
        field = "secrets" if body.secrets is not None else "secret"
        new = [body.secret] if body.secret is not None else body.secrets
        channel.secrets = _secrets(kind, new, field=field)
    if body.min_interval_seconds is not None:
        channel.min_interval_seconds = body.min_interval_seconds
    channel.updated_at = now
    if body.enabled is True:
        channel.disabled_at = None
        channel.disabled_reason = None
    elif body.enabled is False and channel.disabled_at is None:
        session.flush()
        disable_channel(session, channel=channel, reason=f"disabled by {actor}", now=now)
    session.flush()
    return channel


def delete_channel(session: Session, *, name: str, now: dt.datetime) -> None:
    """Delete a channel; its history stays in ``GET /v1/alerts``, its unsent deliveries die."""
    channel = get_channel(session, name)
    session.execute(
        update(AlertDelivery)
        .where(
            AlertDelivery.channel_id == channel.id, AlertDelivery.status.in_(("pending", "sending"))
        )
        .values(status="dead", dead_at=now, lease_token=None, last_error="the channel was deleted")
    )
    session.delete(channel)
    session.flush()


def list_channels(session: Session, *, after: str | None, limit: int) -> Sequence[AlertChannel]:
    stmt = select(AlertChannel).order_by(AlertChannel.name).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(AlertChannel.name > after)
    return session.scalars(stmt).all()


def send_test(channel: AlertChannel, *, settings: Settings, now: dt.datetime) -> TestResult:
    """Send the test message now, outside any transaction, and say what the receiver answered.

    A test changes nothing: not the channel (a 410 does not disable it), not
    the outbox, not the rate limit.
    """
    token = secrets.token_urlsafe(12)
    webhook_id = f"test_{token}"
    message = make_test_message(channel_name=channel.name, now=now, alert_id=webhook_id)
    started = dt.datetime.now(dt.UTC)
    with http_client() as client:
        result = send(
            cast(ChannelKind, channel.kind),
            channel.target,
            message,
            secret=list(channel.secrets) if channel.secrets else None,
            delivery_id=webhook_id,
            smtp=smtp_config(settings),
            http_client=client,
            allow_private=settings.allow_private_targets,
            timeout=settings.alert_send_timeout_seconds,
        )
    elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds() * 1000
    return TestResult(
        channel=channel.name,
        delivered=result.delivered,
        outcome=result.outcome.value,
        status_code=result.status_code,
        response=result.response_excerpt,
        error=result.error,
        webhook_id=webhook_id,
        duration_ms=round(elapsed, 1),
    )


# --------------------------------------------------------------------------- alerts
def _attempt_out(a: AlertAttempt) -> AttemptOut:
    return AttemptOut(
        number=a.number,
        started_at=a.started_at,
        duration_ms=a.duration_ms,
        outcome=a.outcome,
        status_code=a.status_code,
        retry_after=a.retry_after,
        error=a.error,
        response=a.response,
    )


def delivery_out(d: AlertDelivery, history: Sequence[AlertAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=d.webhook_id,
        channel=d.channel_name,
        notification=d.notification,
        repeat=d.repeat,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at if d.status in ("pending", "sending") else None,
        last_attempt_at=d.last_attempt_at,
        delivered_at=d.delivered_at,
        dead_at=d.dead_at,
        last_error=d.last_error,
        last_status_code=d.last_status_code,
        last_response=d.last_response,
        replays=d.replays,
        created_at=d.created_at,
        history=[_attempt_out(a) for a in history],
    )


def alerts_out(session: Session, alerts: Sequence[Alert]) -> list[AlertOut]:
    """Alerts with every delivery and every attempt (three queries for the page)."""
    ids = [a.id for a in alerts]
    deliveries: dict[int, list[AlertDelivery]] = defaultdict(list)
    rows = session.scalars(
        select(AlertDelivery).where(AlertDelivery.alert_id.in_(ids)).order_by(AlertDelivery.id)
    ).all()
    for d in rows:
        deliveries[d.alert_id].append(d)
    history: dict[int, list[AlertAttempt]] = defaultdict(list)
    for a in session.scalars(
        select(AlertAttempt)
        .where(AlertAttempt.delivery_id.in_([d.id for d in rows]))
        .order_by(AlertAttempt.id)
    ):
        history[a.delivery_id].append(a)
    return [
        AlertOut(
            id=a.id,
            dedup_key=a.dedup_key,
            rule=a.rule,
            model=a.model_name,
            severity=a.severity,
            status=a.status,
            notice=a.notice,
            title=a.payload["title"],
            summary=a.payload["summary"],
            fields=fields_out(a.payload["fields"]),
            links=a.payload["links"],
            created_at=a.created_at,
            resolved_at=a.resolved_at,
            deliveries=[delivery_out(d, history[d.id]) for d in deliveries[a.id]],
        )
        for a in alerts
    ]


def list_alerts(
    session: Session,
    *,
    status: str | None,
    model: str | None,
    rule: str | None,
    delivery_status: str | None,
    after: tuple[dt.datetime, int] | None,
    limit: int,
) -> Sequence[Alert]:
    """Newest first, keyset-paginated on (created_at, id)."""
    stmt = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit + 1)
    if status is not None:
        stmt = stmt.where(Alert.status == status)
    if model is not None:
        stmt = stmt.where(Alert.model_name == model)
    if rule is not None:
        stmt = stmt.where(Alert.rule == rule)
    if delivery_status is not None:
        stmt = stmt.where(
            exists().where(
                AlertDelivery.alert_id == Alert.id, AlertDelivery.status == delivery_status
            )
        )
    if after is not None:
        ts, last_id = after
        stmt = stmt.where(
            (Alert.created_at < ts) | ((Alert.created_at == ts) & (Alert.id < last_id))
        )
    return session.scalars(stmt).all()


def get_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    return alert


def _replayable(session: Session, delivery: AlertDelivery) -> None:
    if delivery.status != "dead":
        raise Conflict(
            f"delivery {delivery.webhook_id} is {delivery.status}: only dead deliveries are replayed"
        )
    channel = session.get(AlertChannel, delivery.channel_id) if delivery.channel_id else None
    if channel is None:
        raise Conflict(f"the channel {delivery.channel_name!r} of this delivery was deleted")
    if channel.disabled_at is not None:
        raise Conflict(
            f"the channel {channel.name!r} is disabled ({channel.disabled_reason}): enable it "
            f'with PATCH /v1/alert-channels/{channel.name} {{"enabled": true}} first'
        )


def _replay_values(now: dt.datetime) -> dict[str, Any]:
    # Attempts start again (the history keeps the old ones); the webhook-id stays,
    # so a receiver that did get an earlier attempt can tell.
    return {
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "dead_at": None,
        "lease_token": None,
        "replays": AlertDelivery.replays + 1,
    }


def replay_delivery(session: Session, *, webhook_id: str, now: dt.datetime) -> AlertDelivery:
    delivery = session.scalar(select(AlertDelivery).where(AlertDelivery.webhook_id == webhook_id))
    if delivery is None:
        raise NotFound(f"no alert delivery with id {webhook_id!r}")
    _replayable(session, delivery)
    session.execute(
        update(AlertDelivery)
        .where(AlertDelivery.id == delivery.id, AlertDelivery.status == "dead")
        .values(**_replay_values(now))
    )
    session.refresh(delivery)
    return delivery


def replay_channel(session: Session, *, name: str, now: dt.datetime) -> int:
    """Replay every dead delivery of an enabled channel."""
    channel = get_channel(session, name)
    if channel.disabled_at is not None:
        raise Conflict(
            f"the channel {name!r} is disabled ({channel.disabled_reason}): enable it first"
        )
    result = session.execute(
        update(AlertDelivery)
        .where(AlertDelivery.channel_id == channel.id, AlertDelivery.status == "dead")
        .values(**_replay_values(now))
        .returning(AlertDelivery.id)
    )
    return len(result.all())


def history_of(session: Session, delivery: AlertDelivery) -> Sequence[AlertAttempt]:
    return session.scalars(
        select(AlertAttempt)
        .where(AlertAttempt.delivery_id == delivery.id)
        .order_by(AlertAttempt.id)
    ).all()


# --------------------------------------------------------------------------- silences
def silence_out(s: AlertSilence, channel_names: dict[int, str], now: dt.datetime) -> SilenceOut:
    return SilenceOut(
        id=s.id,
        channel=channel_names.get(s.channel_id) if s.channel_id is not None else None,
        model=s.model_name,
        rule=s.rule,
        until=s.until,
        active=s.until > now,
        comment=s.comment,
        created_by=s.created_by,
        created_at=s.created_at,
    )


def channel_names(session: Session) -> dict[int, str]:
    rows = session.execute(select(AlertChannel.id, AlertChannel.name)).all()
    return {row.id: row.name for row in rows}


def create_silence(
    session: Session, *, body: SilenceCreate, actor: str, now: dt.datetime
) -> AlertSilence:
    if body.until <= now:
        raise ValidationFailed.at(["until"], "a silence must end in the future")
    channel_id = get_channel(session, body.channel).id if body.channel is not None else None
    silence = AlertSilence(
        channel_id=channel_id,
        model_name=body.model,
        rule=body.rule,
        until=body.until,
        comment=body.comment,
        created_by=actor,
        created_at=now,
    )
    session.add(silence)
    session.flush()
    return silence


def list_silences(
    session: Session, *, active_only: bool, now: dt.datetime, after: int | None, limit: int
) -> Sequence[AlertSilence]:
    stmt = select(AlertSilence).order_by(AlertSilence.id.desc()).limit(limit + 1)
    if active_only:
        stmt = stmt.where(AlertSilence.until > now)
    if after is not None:
        stmt = stmt.where(AlertSilence.id < after)
    return session.scalars(stmt).all()


def delete_silence(session: Session, *, silence_id: int) -> None:
    deleted = session.execute(
        delete(AlertSilence).where(AlertSilence.id == silence_id).returning(AlertSilence.id)
    ).scalar_one_or_none()
    if deleted is None:
        raise NotFound(f"no silence with id {silence_id}")
