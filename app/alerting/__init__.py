"""Alert channels: build one alert message and deliver it to Slack, email or a signed webhook.

Pure of the database: the outbox and the dispatcher hand an
:class:`AlertMessage` and a channel's settings to :func:`send`, and store the
:class:`DeliveryOutcome` it returns.
"""

from app.alerting.channels import (
    CHANNEL_KINDS,
    ChannelKind,
    redact_target,
    send,
    validate_secret,
    validate_target,
)
from app.alerting.email import SmtpConfig
from app.alerting.message import AlertMessage, make_test_message
from app.alerting.outcome import (
    MAX_ATTEMPTS,
    DeliveryOutcome,
    Outcome,
    backoff,
    retry_delay,
)
from app.alerting.signing import generate_secret
from app.alerting.targets import InvalidTargetError, UnresolvableTargetError

__all__ = [
    "CHANNEL_KINDS",
    "MAX_ATTEMPTS",
    "AlertMessage",
    "ChannelKind",
    "DeliveryOutcome",
    "InvalidTargetError",
    "Outcome",
    "SmtpConfig",
    "UnresolvableTargetError",
    "backoff",
    "generate_secret",
    "make_test_message",
    "redact_target",
    "retry_delay",
    "send",
    "validate_secret",
    "validate_target",
]
