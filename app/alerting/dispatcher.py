"""The dispatcher: claim due deliveries with a lease, send them, mark them.

Safe with any number of dispatchers (``driftdesk serve`` replicas and
``driftdesk worker`` processes) on one database:

1. **claim**, in a short transaction: the oldest due deliveries of enabled
   channels that are not rate-limited right now (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL; SQLite serialises writers), each taken with a guarded
   ``UPDATE … WHERE status IN ('pending', 'sending') AND next_attempt_at <= now``
   that sets a fresh lease token and moves ``next_attempt_at`` to the lease's
   expiry. A rate-limited channel's slot is taken the same way, on the channel
   row. A delivery waits for the earlier unsent deliveries of its alert to the
   same channel, so a resolve never overtakes its firing message.
2. **send**, outside any transaction, with :func:`app.alerting.channels.send`.
3. **mark**, in a second transaction, with a compare-and-set on the lease token;
   no row means the lease was lost (it expired and someone else re-sent), and
   the mark is dropped.

At least once: a dispatcher that dies between 2 and 3 leaves the delivery
``sending`` with an expired lease, and the next claim sends it again with the
same ``webhook_id`` (the receiver's idempotency key).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
import ssl
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Final

import certifi
import httpx
from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from app.alerting import rules
from app.alerting.channels import ChannelKind, send
from app.alerting.email import SmtpConfig
from app.alerting.message import AlertMessage
from app.alerting.outbox import UNSENT, to_message
from app.alerting.outcome import DeliveryOutcome, Outcome, retry_delay
from app.alerting.tables import AlertAttempt, AlertChannel, AlertDelivery
from app.db import Database
from app.settings import Settings
from storage.base import utcnow
from storage.sql import POSTGRESQL, dialect

log = logging.getLogger("driftdesk.alerting")

QUIET_RULES: Final = frozenset({"channel.delivery_failed", "channel.test"})


@dataclass(frozen=True, slots=True)
class Claimed:
    """One delivery this dispatcher holds the lease of, with what it needs to send it."""

    delivery_id: int
    webhook_id: str
    lease_token: str
    attempt: int
    channel_id: int
    kind: ChannelKind
    target: str
    secrets: tuple[str, ...]
    message: AlertMessage


@dataclass(frozen=True, slots=True)
class Sent:
    claimed: Claimed
    result: DeliveryOutcome
    started_at: dt.datetime
    duration_ms: float


def lease_seconds(settings: Settings) -> float:
    """The configured lease, never shorter than a send may take."""
    longest = max(settings.alert_send_timeout_seconds, settings.smtp_timeout_seconds)
    return max(settings.alert_lease_seconds, longest + 1.0)


def smtp_config(settings: Settings) -> SmtpConfig | None:
    """The SMTP server of the settings, or ``None`` when email is not configured."""
    if settings.smtp_host is None:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_sender,
        username=settings.smtp_username,
        password=password,
        security=settings.smtp_security,
        timeout=settings.smtp_timeout_seconds,
    )


@functools.cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle takes ~100 ms: once per process, not once per dispatch step.
    return ssl.create_default_context(cafile=certifi.where())


def http_client() -> httpx.Client:
    """The client deliveries are posted with: no proxies from the environment (targets are pinned)."""
    return httpx.Client(verify=_tls(), trust_env=False, follow_redirects=False)


# --------------------------------------------------------------------------- claim
def _candidates(session: Session, *, now: dt.datetime, limit: int) -> Sequence[Any]:
    earlier = aliased(AlertDelivery)
    blocked = exists().where(
        earlier.alert_id == AlertDelivery.alert_id,
        earlier.channel_id == AlertDelivery.channel_id,
        earlier.id < AlertDelivery.id,
        earlier.status.in_(UNSENT),
    )
    stmt = (
        select(AlertDelivery.id, AlertDelivery.channel_id, AlertChannel.min_interval_seconds)
        .join(AlertChannel, AlertChannel.id == AlertDelivery.channel_id)
        .where(
            AlertDelivery.status.in_(UNSENT),
            AlertDelivery.next_attempt_at <= now,
            AlertChannel.disabled_at.is_(None),
            or_(AlertChannel.next_send_at.is_(None), AlertChannel.next_send_at <= now),
            ~blocked,
        )
        .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
        .limit(limit)
    )
    if dialect(session) == POSTGRESQL:
        stmt = stmt.with_for_update(skip_locked=True, of=AlertDelivery)
    return session.execute(stmt).all()


def _take_slot(session: Session, *, channel_id: int, interval: float, now: dt.datetime) -> bool:
    """The channel's rate limit: one send per ``interval`` seconds, across every dispatcher."""
    taken = session.execute(
        update(AlertChannel)
        .where(
            AlertChannel.id == channel_id,
            or_(AlertChannel.next_send_at.is_(None), AlertChannel.next_send_at <= now),
        )
        .values(next_send_at=now + dt.timedelta(seconds=interval))
        .returning(AlertChannel.id)
    ).scalar_one_or_none()
    return taken is not None


def claim(session: Session, *, now: dt.datetime, lease: float, limit: int) -> list[Claimed]:
    """Take the leases of up to ``limit`` due deliveries."""
    claimed: list[Claimed] = []
    limited: set[int] = set()
    # Lock no more candidates than can be claimed: a row locked here is skipped by the
    # other dispatchers until this transaction ends.
    for delivery_id, channel_id, interval in _candidates(session, now=now, limit=limit):
        if interval > 0:
            if channel_id in limited:
                continue
            limited.add(channel_id)
            if not _take_slot(session, channel_id=channel_id, interval=interval, now=now):
                continue
        token = secrets.token_hex(16)
        row = session.execute(
            update(AlertDelivery)
            .where(
                AlertDelivery.id == delivery_id,
                AlertDelivery.status.in_(UNSENT),
                AlertDelivery.next_attempt_at <= now,
            )
            .values(
                status="sending",
                lease_token=token,
                attempts=AlertDelivery.attempts + 1,
                last_attempt_at=now,
                next_attempt_at=now + dt.timedelta(seconds=lease),
            )
            .returning(
                AlertDelivery.webhook_id,
                AlertDelivery.attempts,
                AlertDelivery.alert_id,
                AlertDelivery.message,
            )
        ).one_or_none()
        if row is None:
            continue  # taken since it was read
        channel = session.get_one(AlertChannel, channel_id)
        claimed.append(
            Claimed(
                delivery_id=delivery_id,
                webhook_id=row.webhook_id,
                lease_token=token,
                attempt=row.attempts,
                channel_id=channel_id,
                kind=channel.kind,  # type: ignore[arg-type]
                target=channel.target,
                secrets=tuple(channel.secrets or ()),
                message=to_message(row.alert_id, row.message),
            )
        )
    return claimed


# --------------------------------------------------------------------------- send
def send_claimed(
    claimed: Claimed, *, settings: Settings, client: httpx.Client, smtp: SmtpConfig | None
) -> Sent:
    started_at = utcnow()
    started = time.perf_counter()
    try:
        result = send(
            claimed.kind,
            claimed.target,
            claimed.message,
            secret=list(claimed.secrets) if claimed.secrets else None,
            delivery_id=claimed.webhook_id,
            smtp=smtp,
            http_client=client,
            allow_private=settings.allow_private_targets,
            timeout=settings.alert_send_timeout_seconds,
        )
    except ValueError as exc:  # a stored row send() refuses (an unknown kind): never retried
        result = DeliveryOutcome.dead(f"the delivery cannot be sent: {exc}")
    return Sent(claimed, result, started_at, (time.perf_counter() - started) * 1000)


# --------------------------------------------------------------------------- mark
def _delivery_values(sent: Sent, *, now: dt.datetime) -> dict[str, Any]:
    """The delivery's columns after this attempt: delivered, pending a retry, or dead."""
    c, result = sent.claimed, sent.result
    values: dict[str, Any] = {
        "lease_token": None,
        "last_error": result.error,
        "last_status_code": result.status_code,
        "last_response": result.response_excerpt or None,
    }
    delay = retry_delay(result, c.attempt)
    if result.outcome is Outcome.DELIVERED:
        values.update(status="delivered", delivered_at=now)
    elif delay is not None:
        values.update(status="pending", next_attempt_at=now + dt.timedelta(seconds=delay))
    else:
        if result.outcome is Outcome.RETRY:
            values["last_error"] = f"{result.error} (gave up after {c.attempt} attempts)"
        values.update(status="dead", dead_at=now)
    return values


def mark(session: Session, sent: Sent, *, now: dt.datetime) -> str:
    """Store the outcome of one attempt; returns the delivery's new status, or ``lost``."""
    c, result = sent.claimed, sent.result
    session.add(
        AlertAttempt(
            delivery_id=c.delivery_id,
            number=c.attempt,
            started_at=sent.started_at,
            duration_ms=round(sent.duration_ms, 1),
            outcome=result.outcome.value,
            status_code=result.status_code,
            retry_after=result.retry_after,
            error=result.error,
            response=result.response_excerpt or None,
        )
    )
    values = _delivery_values(sent, now=now)
    marked = session.execute(
        update(AlertDelivery)
        .where(
            AlertDelivery.id == c.delivery_id,
            AlertDelivery.lease_token == c.lease_token,
            AlertDelivery.status == "sending",
        )
        .values(**values)
        .returning(AlertDelivery.id)
    ).scalar_one_or_none()
    if marked is None:
        log.warning(
            "alert delivery lease lost before marking",
            extra={"delivery_id": c.webhook_id, "outcome": result.outcome.value},
        )
        return "lost"
    status: str = values["status"]
    _report_channel_health(session, sent, status=status, error=values["last_error"], now=now)
    return status


def _report_channel_health(
    session: Session, sent: Sent, *, status: str, error: str | None, now: dt.datetime
) -> None:
    """A delivered message resolves its channel's failure report; a dead one raises it."""
    c = sent.claimed
    channel = session.get(AlertChannel, c.channel_id)
    if channel is None or status not in ("delivered", "dead"):
        return
    if status == "delivered":
        if c.message.rule not in QUIET_RULES:
            rules.channel_recovered(session, channel=channel, now=now)
        return
    disabled = sent.result.outcome is Outcome.DISABLE_CHANNEL
    if disabled:
        disable_channel(session, channel=channel, reason=error or "", now=now)
    if c.message.rule not in QUIET_RULES:
        delivery = session.get_one(AlertDelivery, c.delivery_id)
        rules.channel_failed(
            session,
            channel=channel,
            delivery=delivery,
            error=error or "unknown error",
            disabled=disabled,
            now=now,
        )


def disable_channel(
    session: Session, *, channel: AlertChannel, reason: str, now: dt.datetime
) -> None:
    """Stop sending to a channel: it is disabled and its unsent deliveries are dead.

    They keep their place in ``GET /v1/alerts`` and can be replayed once the
    channel is enabled again.
    """
    session.execute(
        update(AlertChannel)
        .where(AlertChannel.id == channel.id, AlertChannel.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=reason, updated_at=now)
    )
    session.execute(
        update(AlertDelivery)
        .where(AlertDelivery.channel_id == channel.id, AlertDelivery.status == "pending")
        .values(status="dead", dead_at=now, last_error=f"the channel was disabled: {reason}")
    )
    session.refresh(channel)
    log.error("alert channel disabled", extra={"channel": channel.name, "reason": reason})


# --------------------------------------------------------------------------- the loop
def dispatch_due(
    db: Database,
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    client: httpx.Client | None = None,
) -> int:
    """The dispatcher loop's step: claim, send (a few at once), mark. Returns deliveries sent.

    ``now`` pins the clock (tests step through backoff without sleeping).
    """
    with db.session() as session:
        claimed = claim(
            session,
            now=now or utcnow(),
            lease=lease_seconds(settings),
            limit=settings.alert_dispatch_concurrency,
        )
    if not claimed:
        return 0
    smtp = smtp_config(settings)
    own = client is None
    http = client or http_client()

    def finish(sent: Sent) -> None:
        try:
            with db.session() as session:
                mark(session, sent, now=now or utcnow())
        except Exception:
            # The lease runs out and the delivery is sent again: at least once, never lost.
            log.exception(
                "marking an alert delivery failed", extra={"delivery_id": sent.claimed.webhook_id}
            )

    try:
        if len(claimed) == 1:
            finish(send_claimed(claimed[0], settings=settings, client=http, smtp=smtp))
        else:
            # Each delivery is marked as soon as its send returns: a slow receiver does
            # not hold back the marks of the others (which a crash would then re-send).
            with ThreadPoolExecutor(len(claimed), thread_name_prefix="driftdesk-send") as pool:
                futures = [
                    pool.submit(send_claimed, c, settings=settings, client=http, smtp=smtp)
                    for c in claimed
                ]
                for future in as_completed(futures):
                    finish(future.result())
    finally:
        if own:
            http.close()
    return len(claimed)
