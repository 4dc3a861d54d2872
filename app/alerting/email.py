"""Alert emails: built with :mod:`email`, sent with :mod:`smtplib`.

Every mail has a plain-text and an HTML part, ``Auto-Submitted:
auto-generated`` (RFC 3834, so vacation responders stay quiet) and
``X-Auto-Response-Suppress: All`` (the same for Exchange).

Threading: the ``Message-ID`` is derived from the message alone, so a retry
or a re-send after a crash carries the same id and the receiving side can
drop the duplicate. The first firing mail of an episode gets the episode's
thread id; reminders and the resolved mail get their own ids and point at the
thread id with ``In-Reply-To`` and ``References``, which mail clients use to
show them as one conversation::

    firing    Message-ID: <alert.<sha256(dedup_key)>@<sender domain>>
    reminder  Message-ID: <alert.<…>.reminder<n>@…>   In-Reply-To: <alert.<…>@…>
    resolved  Message-ID: <alert.<…>.resolved@…>      In-Reply-To: <alert.<…>@…>

SMTP answers: a 4xx reply (at connect, MAIL, RCPT or DATA) is retried, a 5xx
reply is dead; timeouts and dropped connections are retried.
"""

from __future__ import annotations

import hashlib
import html
import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Final, Literal, get_args

from app.alerting.message import AlertMessage, format_timestamp
from app.alerting.outcome import DeliveryOutcome, Outcome, excerpt

SmtpSecurity = Literal["none", "starttls", "tls"]
SMTP_SECURITIES: Final[tuple[SmtpSecurity, ...]] = get_args(SmtpSecurity)
MAX_RECIPIENTS: Final = 50
SUBJECT_MAX: Final = 200
SUMMARY_MAX: Final = 50_000

_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_SPACE = re.compile(r"\s+")
_BANNER: Final = {
    "critical": "#b42318",
    "warning": "#b54708",
    "info": "#175cd3",
    "resolved": "#067647",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpConfig:
    """Where and how to send mail. The password never appears in ``repr``.

    ``ssl_context`` defaults to the system's trusted CAs with host name
    checking; pass one to trust a private CA.
    """

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: SmtpSecurity = "starttls"
    timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.security not in SMTP_SECURITIES:
            raise ValueError(f"security must be one of {', '.join(SMTP_SECURITIES)}")
        if not 0 < self.port < 65536:
            raise ValueError("port must be between 1 and 65535")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.username is not None and self.security == "none":
            raise ValueError("refusing to send an SMTP password unencrypted: use starttls or tls")
        validate_address(self.sender)


def validate_address(address: str) -> str:
    """Check one plain address (``local@domain``) and return it, domain in IDNA form.

    >>> validate_address("oncall@example.com")
    'oncall@example.com'
    >>> validate_address("Ana <ana@example.com>")
    Traceback (most recent call last):
    ...
    ValueError: 'Ana <ana@example.com>' is not a plain email address like oncall@example.com
    """
    problem = ValueError(f"{address!r} is not a plain email address like oncall@example.com")
    if len(address) > 254 or any(c.isspace() or ord(c) < 32 for c in address):
        raise problem
    local, at, domain = address.rpartition("@")
    if not at or not 0 < len(local) <= 64 or not _DOT_ATOM.match(local):
        raise problem
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise problem from None
    # A single label is allowed: "driftdesk@localhost" is the settings' default sender.
    if not all(_LABEL.match(label) for label in ascii_domain.split(".")):
        raise problem
    return f"{local}@{ascii_domain}"


def parse_recipients(target: str) -> list[str]:
    """A channel's target: one address, or several separated by commas.

    >>> parse_recipients("oncall@example.com, ml-team@example.com")
    ['oncall@example.com', 'ml-team@example.com']
    """
    parts = [part.strip() for part in target.split(",")]
    if not parts or any(not part for part in parts):
        raise ValueError("the target is one email address, or several separated by commas")
    if len(parts) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} recipients per channel")
    return [validate_address(part) for part in parts]


def _digest(dedup_key: str) -> str:
    return hashlib.sha256(dedup_key.encode("utf-8")).hexdigest()[:32]


def thread_id(message: AlertMessage, domain: str) -> str:
    """The ``Message-ID`` of the episode's first firing mail."""
    return f"<alert.{_digest(message.dedup_key)}@{domain}>"


def message_id(message: AlertMessage, domain: str) -> str:
    """This mail's ``Message-ID``: stable across retries, distinct per notification."""
    digest = _digest(message.dedup_key)
    if message.resolved:
        return f"<alert.{digest}.resolved@{domain}>"
    if message.repeat:
        return f"<alert.{digest}.reminder{message.repeat}@{domain}>"
    return thread_id(message, domain)


def _one_line(text: str, limit: int) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def subject(message: AlertMessage) -> str:
    """``[driftdesk] CRITICAL: title``, ``[driftdesk] RESOLVED: title``."""
    label = "RESOLVED" if message.resolved else message.severity.upper()
    if message.repeat and not message.resolved:
        label += f" (reminder {message.repeat})"
    return _one_line(f"[driftdesk] {label}: {message.title}", SUBJECT_MAX)


def _details(message: AlertMessage) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if message.model:
        rows.append(("Model", message.model))
    rows.append(("Rule", message.rule))
    rows.append(("Severity", message.severity))
    rows.append(
        ("Resolved at" if message.resolved else "Since", format_timestamp(message.occurred_at))
    )
    rows.extend(message.fields)
    return rows


def _summary(message: AlertMessage) -> str:
    summary = message.summary.strip()
    if len(summary) > SUMMARY_MAX:
        summary = summary[:SUMMARY_MAX] + "\n… (cut; the rest is in the ticket)"
    return summary


def render_text(message: AlertMessage) -> str:
    label = "RESOLVED" if message.resolved else message.severity.upper()
    lines = [f"{label}: {message.title}", ""]
    if message.summary.strip():
        lines += [_summary(message), ""]
    lines += [f"{name}: {value}" for name, value in _details(message)]
    if message.links:
        lines += ["", "Links:"]
        lines += [f"  {name}: {url}" for name, url in message.links.items()]
    lines += ["", "-- ", "Sent by driftdesk. This message was generated automatically."]
    return "\n".join(lines) + "\n"


def render_html(message: AlertMessage) -> str:
    e = html.escape
    key = "resolved" if message.resolved else message.severity
    label = "RESOLVED" if message.resolved else message.severity.upper()
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0;color:#475467">{e(name)}</th>'
        f'<td style="padding:2px 0">{e(value)}</td></tr>'
        for name, value in _details(message)
    )
    links = "".join(
        f'<a href="{e(url, quote=True)}" style="margin-right:16px">{e(name)}</a>'
        for name, url in message.links.items()
    )
    summary = e(_summary(message)).replace("\n", "<br>\n")
    return (
        "<!DOCTYPE html>\n"
        '<html><head><meta charset="utf-8"></head>'
        '<body style="font-family:sans-serif;font-size:14px;color:#101828">\n'
        f'<div style="background:{_BANNER[key]};color:#fff;padding:8px 12px;font-weight:bold">'
        f"{e(label)}: {e(message.title)}</div>\n"
        f'<p style="padding:0 12px">{summary}</p>\n'
        f'<table style="margin:0 12px">{rows}</table>\n'
        + (f'<p style="padding:0 12px">{links}</p>\n' if links else "")
        + '<p style="padding:0 12px;color:#667085;font-size:12px">'
        "Sent by driftdesk. This message was generated automatically.</p>\n"
        "</body></html>\n"
    )


def build_email(
    message: AlertMessage,
    *,
    sender: str,
    recipients: Sequence[str],
    delivery_id: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The complete mail for one notification (``multipart/alternative``)."""
    domain = validate_address(sender).rpartition("@")[2]
    mail = EmailMessage()
    mail["Subject"] = subject(message)
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = format_datetime(now or datetime.now(UTC))
    mail["Message-ID"] = message_id(message, domain)
    root = thread_id(message, domain)
    if mail["Message-ID"] != root:
        mail["In-Reply-To"] = root
        mail["References"] = root
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Auto-Response-Suppress"] = "All"
    mail["X-Driftdesk-Event"] = message.event_type
    mail["X-Driftdesk-Severity"] = message.severity
    if delivery_id is not None:
        mail["X-Driftdesk-Delivery-Id"] = _one_line(delivery_id, 128)
    mail.set_content(render_text(message))
    mail.add_alternative(render_html(message), subtype="html")
    return mail


def _smtp_reply(code: int, text: bytes | str) -> str:
    return f"{code} {excerpt(text)}"


def _classify_code(code: int, what: str, text: bytes | str) -> DeliveryOutcome:
    reply = _smtp_reply(code, text)
    if 400 <= code < 500:
        return DeliveryOutcome.retry(f"{what}: {reply}", status_code=code, excerpt=excerpt(text))
    return DeliveryOutcome.dead(f"{what}: {reply}", status_code=code, excerpt=excerpt(text))


def _scrub(text: str, config: SmtpConfig) -> str:
    # Belt and braces: no server reply should echo a password, but if it does
    # it must not reach the delivery row.
    if config.password:
        text = text.replace(config.password, "***")
    return text


def _send(mail: EmailMessage, recipients: list[str], config: SmtpConfig) -> DeliveryOutcome:
    context = config.ssl_context or ssl.create_default_context()
    client: smtplib.SMTP
    if config.security == "tls":
        client = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=context)
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    try:
        if config.security == "starttls":
            client.ehlo()
            client.starttls(context=context)
            client.ehlo()
        if config.username is not None and config.password is not None:
            client.login(config.username, config.password)
        refused = client.send_message(mail, from_addr=config.sender, to_addrs=recipients)
    finally:
        # The message is handed over once DATA is accepted; a failing QUIT must
        # not turn a sent mail into a retry (and a duplicate).
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
    if refused:
        listed = "; ".join(f"{rcpt}: {_smtp_reply(c, t)}" for rcpt, (c, t) in refused.items())
        # Delivered to the others; a refused address is a channel setting to fix.
        return DeliveryOutcome(Outcome.DELIVERED, status_code=250, error=f"refused: {listed}")
    return DeliveryOutcome.success(status_code=250)


def send_email(
    target: str,
    message: AlertMessage,
    *,
    smtp: SmtpConfig,
    delivery_id: str | None = None,
) -> DeliveryOutcome:
    """Build and send the mail to the channel's recipients over SMTP."""
    try:
        recipients = parse_recipients(target)
    except ValueError as exc:
        return DeliveryOutcome.dead(str(exc))
    mail = build_email(message, sender=smtp.sender, recipients=recipients, delivery_id=delivery_id)
    try:
        result = _send(mail, recipients, smtp)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{r}: {_smtp_reply(c, t)}" for r, (c, t) in exc.recipients.items())
        if any(400 <= code < 500 for code in codes):
            result = DeliveryOutcome.retry(f"recipients refused: {detail}", status_code=min(codes))
        else:
            result = DeliveryOutcome.dead(f"recipients refused: {detail}", status_code=min(codes))
    except smtplib.SMTPResponseException as exc:
        # SMTPSenderRefused, SMTPDataError, SMTPConnectError, SMTPHeloError,
        # SMTPAuthenticationError all carry the server's reply code.
        result = _classify_code(exc.smtp_code, type(exc).__name__, exc.smtp_error)
    except smtplib.SMTPNotSupportedError as exc:
        result = DeliveryOutcome.dead(f"the SMTP server does not support this: {exc}")
    except ssl.SSLCertVerificationError as exc:
        result = DeliveryOutcome.dead(
            f"the SMTP server's certificate was not accepted: {exc.verify_message}"
        )
    except (smtplib.SMTPException, OSError) as exc:
        # Timeouts, refused or dropped connections, TLS handshakes cut short.
        result = DeliveryOutcome.retry(f"SMTP connection failed: {type(exc).__name__}: {exc}")
    if result.error is not None:
        result = DeliveryOutcome(
            result.outcome,
            status_code=result.status_code,
            retry_after=result.retry_after,
            response_excerpt=_scrub(result.response_excerpt, smtp),
            error=_scrub(result.error, smtp),
        )
    return result
