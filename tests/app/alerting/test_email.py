"""Alert emails: the message itself, and sending to a real aiosmtpd server on loopback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from app.alerting.email import (
    SmtpConfig,
    build_email,
    parse_recipients,
    send_email,
    validate_address,
)
from app.alerting.message import AlertMessage
from app.alerting.outcome import Outcome

from .conftest import SmtpServer, StartSmtp, TlsFiles

MakeMessage = Callable[..., AlertMessage]
SENDER = "driftdesk@alerts.example.com"
NOW = dt.datetime(2026, 11, 24, 10, 0, 5, tzinfo=dt.UTC)


def mail_for(message: AlertMessage) -> EmailMessage:
    return build_email(message, sender=SENDER, recipients=["oncall@example.com"], now=NOW)


def parts(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_headers_and_both_parts(make_message: MakeMessage) -> None:
    mail = mail_for(make_message())
    assert mail.get_content_type() == "multipart/alternative"
    assert mail["Subject"] == "[driftdesk] CRITICAL: Drift on churn-classifier: 4 of 12 features"
    assert mail["From"] == SENDER
    assert mail["To"] == "oncall@example.com"
    assert mail["Date"] == "Tue, 24 Nov 2026 10:00:05 +0000"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["X-Auto-Response-Suppress"] == "All"
    assert mail["X-Driftdesk-Event"] == "drift.incident.opened"
    text, html = parts(mail)
    assert text.startswith("CRITICAL: Drift on churn-classifier: 4 of 12 features\n")
    assert "age, plan, tenure and region drifted" in text
    assert "features drifted: 4 / 12" in text
    assert "ticket: https://driftdesk.example/ui/tickets/9" in text
    assert '<a href="https://driftdesk.example/ui/tickets/9"' in html
    assert "<td" in html and "4 / 12" in html


def test_html_escapes_everything(make_message: MakeMessage) -> None:
    mail = mail_for(
        make_message(
            title="<script>alert(1)</script>",
            summary='"quoted" & <b>bold</b>',
            fields=[("<i>", "<img src=x>")],
            links={"report": 'https://x.example/?a=1&b="2"'},
        )
    )
    _, html = parts(mail)
    assert "<script>" not in html and "<b>bold" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;bold" in html
    assert 'href="https://x.example/?a=1&amp;b=&quot;2&quot;"' in html


def test_message_ids_thread_the_episode(make_message: MakeMessage) -> None:
    firing = mail_for(make_message())
    again = mail_for(make_message(alert_id="other-row"))
    reminder = mail_for(make_message(repeat=2))
    resolved = mail_for(make_message(status="resolved", title="Drift ended"))
    other = mail_for(make_message(dedup_key="drift.incident:churn-classifier:43"))

    root = firing["Message-ID"]
    assert root.startswith("<alert.") and root.endswith("@alerts.example.com>")
    # Stable: a re-send of the same notification has the same id.
    assert again["Message-ID"] == root
    assert firing["In-Reply-To"] is None and firing["References"] is None
    for follow_up in (reminder, resolved):
        assert follow_up["Message-ID"] != root
        assert follow_up["In-Reply-To"] == root
        assert follow_up["References"] == root
    assert reminder["Subject"].startswith("[driftdesk] CRITICAL (reminder 2): ")
    assert resolved["Subject"] == "[driftdesk] RESOLVED: Drift ended"
    assert other["Message-ID"] != root
    assert len({root, reminder["Message-ID"], resolved["Message-ID"]}) == 3


def test_subject_is_one_bounded_line(make_message: MakeMessage) -> None:
    mail = mail_for(make_message(title="line one\r\nBcc: victim@example.com\n" + "x" * 500))
    subject = str(mail["Subject"])
    assert "\n" not in subject and "\r" not in subject
    assert len(subject) == 200
    assert mail["Bcc"] is None


@pytest.mark.parametrize(
    "address",
    [
        "oncall@example.com",
        "first.last+alerts@sub.example.co.uk",
        "a@xn--bcher-kva.de",
        "driftdesk@localhost",
    ],
)
def test_valid_addresses(address: str) -> None:
    assert validate_address(address) == address


def test_international_domains_become_idna() -> None:
    assert validate_address("ops@bücher.de") == "ops@xn--bcher-kva.de"


@pytest.mark.parametrize(
    "address",
    [
        "",
        "oncall",
        "@example.com",
        "oncall@",
        "oncall@example..com",
        "on call@example.com",
        "oncall@example.com\r\nBcc: x@y.z",
        "Ana <ana@example.com>",
        ".oncall@example.com",
        "on..call@example.com",
        "oncall@-example.com",
        "x" * 65 + "@example.com",
    ],
)
def test_invalid_addresses(address: str) -> None:
    with pytest.raises(ValueError, match="plain email address"):
        validate_address(address)


def test_recipient_lists() -> None:
    assert parse_recipients(" a@example.com ,b@example.com") == ["a@example.com", "b@example.com"]
    with pytest.raises(ValueError, match="separated by commas"):
        parse_recipients("a@example.com,,b@example.com")
    with pytest.raises(ValueError, match="at most 50"):
        parse_recipients(",".join(f"r{i}@example.com" for i in range(51)))


def test_config_never_shows_the_password() -> None:
    config = SmtpConfig(
        host="smtp.example.com",
        port=587,
        sender=SENDER,
        username="driftdesk",
        password="hunter2-very-secret",
    )
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"security": "ssl"}, "security"),
        ({"port": 0}, "port"),
        ({"timeout": 0}, "timeout"),
        ({"username": "u"}, "together"),
        ({"username": "u", "password": "p", "security": "none"}, "unencrypted"),
        ({"sender": "not an address"}, "plain email address"),
    ],
)
def test_invalid_configs(kwargs: dict[str, object], problem: str) -> None:
    values: dict[str, object] = {"host": "127.0.0.1", "port": 25, "sender": SENDER}
    values.update(kwargs)
    with pytest.raises(ValueError, match=problem):
        SmtpConfig(**values)  # type: ignore[arg-type]


def plain_config(server: SmtpServer, **overrides: object) -> SmtpConfig:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "sender": SENDER,
        "security": "none",
        "timeout": 5.0,
    }
    values.update(overrides)
    return SmtpConfig(**values)  # type: ignore[arg-type]


def test_sends_over_plain_smtp(smtp_server: SmtpServer, make_message: MakeMessage) -> None:
    result = send_email(
        "oncall@example.com, ml@example.com",
        make_message(),
        smtp=plain_config(smtp_server),
        delivery_id="dlv_9",
    )
    assert result.outcome is Outcome.DELIVERED, result.error
    [mail] = smtp_server.mails
    assert mail.mail_from == SENDER
    assert mail.rcpt_tos == ["oncall@example.com", "ml@example.com"]
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert mail.message["X-Driftdesk-Delivery-Id"] == "dlv_9"
    assert mail.message["Message-ID"] == mail_for(make_message())["Message-ID"]
    text, html = parts(mail.message)
    assert "Drift on churn-classifier" in text and "Drift on churn-classifier" in html


def test_the_resolved_mail_threads_on_the_server_side_too(
    smtp_server: SmtpServer, make_message: MakeMessage
) -> None:
    config = plain_config(smtp_server)
    for status in ("firing", "resolved"):
        assert send_email("oncall@example.com", make_message(status=status), smtp=config).delivered
    firing, resolved = (m.message for m in smtp_server.mails)
    assert resolved["In-Reply-To"] == firing["Message-ID"]
    assert resolved["References"] == firing["Message-ID"]


def test_starttls_with_login(
    start_smtp: StartSmtp, tls_files: TlsFiles, make_message: MakeMessage
) -> None:
    server = start_smtp(security="starttls", credentials=("driftdesk", "s3cret-pw"))
    config = plain_config(
        server,
        security="starttls",
        username="driftdesk",
        password="s3cret-pw",
        ssl_context=tls_files.client_context(),
        host="localhost",
    )
    result = send_email("oncall@example.com", make_message(), smtp=config)
    assert result.outcome is Outcome.DELIVERED, result.error
    assert server.logins == [("driftdesk", "s3cret-pw")]
    assert len(server.mails) == 1


def test_wrong_password_is_dead_and_not_echoed(
    start_smtp: StartSmtp, tls_files: TlsFiles, make_message: MakeMessage
) -> None:
    server = start_smtp(security="starttls", credentials=("driftdesk", "s3cret-pw"))
    config = plain_config(
        server,
        security="starttls",
        username="driftdesk",
        password="wrong-pw-123",
        ssl_context=tls_files.client_context(),
        host="localhost",
    )
    result = send_email("oncall@example.com", make_message(), smtp=config)
    assert result.outcome is Outcome.DEAD
    assert result.status_code == 535
    assert "wrong-pw-123" not in repr(result)
    assert server.mails == []


def test_implicit_tls(
    start_smtp: StartSmtp, tls_files: TlsFiles, make_message: MakeMessage
) -> None:
    server = start_smtp(security="tls")
    config = plain_config(
        server, security="tls", ssl_context=tls_files.client_context(), host="localhost"
    )
    result = send_email("oncall@example.com", make_message(), smtp=config)
    assert result.outcome is Outcome.DELIVERED, result.error
    assert len(server.mails) == 1


def test_an_untrusted_certificate_is_dead(start_smtp: StartSmtp, make_message: MakeMessage) -> None:
    server = start_smtp(security="tls")
    result = send_email(
        "oncall@example.com", make_message(), smtp=plain_config(server, security="tls")
    )
    assert result.outcome is Outcome.DEAD
    assert result.error is not None and "certificate" in result.error
    assert server.mails == []


def test_starttls_required_but_not_offered_is_dead(
    smtp_server: SmtpServer, make_message: MakeMessage
) -> None:
    result = send_email(
        "oncall@example.com", make_message(), smtp=plain_config(smtp_server, security="starttls")
    )
    assert result.outcome is Outcome.DEAD
    assert result.error is not None and "STARTTLS" in result.error


@pytest.mark.parametrize(
    ("stage", "reply", "outcome"),
    [
        ("data", "451 4.3.0 Try again later", Outcome.RETRY),
        ("data", "550 5.7.1 Message rejected", Outcome.DEAD),
        ("rcpt", "450 4.2.1 Mailbox busy", Outcome.RETRY),
        ("rcpt", "550 5.1.1 No such user", Outcome.DEAD),
    ],
)
def test_smtp_replies(
    smtp_server: SmtpServer, make_message: MakeMessage, stage: str, reply: str, outcome: Outcome
) -> None:
    if stage == "data":
        smtp_server.handler.data_reply = reply
    else:
        smtp_server.handler.rcpt_reply = reply
    result = send_email("oncall@example.com", make_message(), smtp=plain_config(smtp_server))
    assert result.outcome is outcome
    assert result.status_code == int(reply[:3])
    assert result.error is not None and reply[4:] in result.error
    assert smtp_server.mails == []


def test_a_closed_port_is_retried(closed_port: int, make_message: MakeMessage) -> None:
    config = SmtpConfig(
        host="127.0.0.1", port=closed_port, sender=SENDER, security="none", timeout=2.0
    )
    result = send_email("oncall@example.com", make_message(), smtp=config)
    assert result.outcome is Outcome.RETRY
    assert result.error is not None and "ConnectionRefusedError" in result.error


def test_an_invalid_target_is_dead(smtp_server: SmtpServer, make_message: MakeMessage) -> None:
    result = send_email("not-an-address", make_message(), smtp=plain_config(smtp_server))
    assert result.outcome is Outcome.DEAD
    assert smtp_server.mails == []
