"""The channel layer's front door: check a channel when it is created, send to it later.

The dispatcher calls :func:`send` once per delivery attempt and stores the
:class:`~app.alerting.outcome.DeliveryOutcome`; the alert-channel endpoints
call :func:`validate_target` and :func:`validate_secret` before saving a
channel, and :func:`redact_target` before showing one.

``send`` never raises for anything a receiver or the network does, and never
puts a signing secret, an SMTP password or a Slack webhook path into an
outcome or a log record.
"""

from __future__ import annotations

import logging
import time
from typing import Final, Literal, get_args

import httpx

from app.alerting.email import SmtpConfig, parse_recipients, send_email
from app.alerting.message import AlertMessage
from app.alerting.outcome import DeliveryOutcome, Outcome
from app.alerting.signing import Secrets, secret_key, validate_webhook_id
from app.alerting.slack import send_slack
from app.alerting.targets import InvalidTargetError, check_url, redact_url
from app.alerting.transport import DEFAULT_TIMEOUT_SECONDS
from app.alerting.webhook import send_webhook

ChannelKind = Literal["slack", "email", "webhook"]
CHANNEL_KINDS: Final[tuple[ChannelKind, ...]] = get_args(ChannelKind)

logger = logging.getLogger(__name__)

_LOG_LEVEL: Final = {
    Outcome.DELIVERED: logging.INFO,
    Outcome.RETRY: logging.WARNING,
    Outcome.DEAD: logging.ERROR,
    Outcome.DISABLE_CHANNEL: logging.ERROR,
}


def _check_kind(kind: str) -> None:
    if kind not in CHANNEL_KINDS:
        raise ValueError(f"channel kind must be one of {', '.join(CHANNEL_KINDS)}")


def validate_target(kind: ChannelKind, target: str, *, allow_private: bool) -> str:
    """The target in its stored form, or :class:`InvalidTargetError` saying what is wrong.

    Slack and webhook targets are URLs that must resolve only to allowed
    addresses (see :mod:`.targets`); an email target is one address or several
    separated by commas.
    """
    _check_kind(kind)
    target = target.strip()
    if kind == "email":
        try:
            return ", ".join(parse_recipients(target))
        except ValueError as exc:
            raise InvalidTargetError(str(exc)) from None
    check_url(target, allow_private=allow_private)
    return target


def validate_secret(kind: ChannelKind, secret: str | None) -> None:
    """A webhook channel needs a ``whsec_`` secret; the other kinds take none."""
    _check_kind(kind)
    if kind != "webhook":
        if secret is not None:
            raise ValueError(f"a {kind} channel has no signing secret")
        return
    if secret is None:
        raise ValueError("a webhook channel needs a signing secret (whsec_...)")
    secret_key(secret)


def redact_target(kind: ChannelKind, target: str) -> str:
    """The target as logs and API answers may show it (URL paths hold Slack's token)."""
    return target if kind == "email" else redact_url(target)


def _deliver(
    kind: ChannelKind,
    target: str,
    message: AlertMessage,
    *,
    secret: Secrets | None,
    delivery_id: str,
    smtp: SmtpConfig | None,
    http_client: httpx.Client,
    allow_private: bool,
    timeout: float,
) -> DeliveryOutcome:
    if kind == "slack":
        return send_slack(
            target, message, http_client=http_client, allow_private=allow_private, timeout=timeout
        )
    if kind == "webhook":
        if secret is None:
            return DeliveryOutcome.dead("the webhook channel has no signing secret")
        try:
            for one in [secret] if isinstance(secret, str) else secret:
                secret_key(one)
        except ValueError as exc:
            return DeliveryOutcome.dead(f"the webhook channel's signing secret is invalid: {exc}")
        return send_webhook(
            target,
            message,
            secrets=secret,
            delivery_id=delivery_id,
            http_client=http_client,
            allow_private=allow_private,
            timeout=timeout,
        )
    if smtp is None:
        return DeliveryOutcome.dead("no SMTP server is configured for email channels")
    return send_email(target, message, smtp=smtp, delivery_id=delivery_id)


def send(
    kind: ChannelKind,
    target: str,
    message: AlertMessage,
    *,
    secret: Secrets | None,
    delivery_id: str,
    smtp: SmtpConfig | None,
    http_client: httpx.Client,
    allow_private: bool,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> DeliveryOutcome:
    """Make one delivery attempt of ``message`` to one channel.

    ``delivery_id`` identifies the delivery (not the attempt): it is the
    ``webhook-id`` and must be the same on every retry. ``secret`` is the
    webhook channel's signing secret, or several during a rotation. Raises
    ``ValueError`` only for invalid arguments (an unknown kind, a malformed
    ``delivery_id``); every failure to deliver is an outcome.
    """
    _check_kind(kind)
    validate_webhook_id(delivery_id)
    started = time.perf_counter()
    try:
        result = _deliver(
            kind,
            target,
            message,
            secret=secret,
            delivery_id=delivery_id,
            smtp=smtp,
            http_client=http_client,
            allow_private=allow_private,
            timeout=timeout,
        )
    except Exception as exc:
        # A bug here must not take the dispatcher down: the attempt is retried
        # and, if the bug stays, dead-lettered where people will see it.
        logger.exception(
            "alert delivery crashed",
            extra={"channel_kind": kind, "delivery_id": delivery_id, "alert_id": message.alert_id},
        )
        result = DeliveryOutcome.retry(f"internal error while sending: {type(exc).__name__}")
    _log_outcome(kind, target, message, delivery_id, result, started)
    return result


def _log_outcome(
    kind: ChannelKind,
    target: str,
    message: AlertMessage,
    delivery_id: str,
    result: DeliveryOutcome,
    started: float,
) -> None:
    logger.log(
        _LOG_LEVEL[result.outcome],
        "alert delivery %s",
        result.outcome.value,
        extra={
            "channel_kind": kind,
            "target": redact_target(kind, target),
            "delivery_id": delivery_id,
            "alert_id": message.alert_id,
            "dedup_key": message.dedup_key,
            "rule": message.rule,
            "model": message.model,
            "outcome": result.outcome.value,
            "status_code": result.status_code,
            "retry_after": result.retry_after,
            "error": result.error,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
