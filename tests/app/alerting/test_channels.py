"""The single entry point the dispatcher calls, and channel validation for the API."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import httpx
import pytest

from app.alerting import (
    InvalidTargetError,
    Outcome,
    SmtpConfig,
    generate_secret,
    redact_target,
    send,
    validate_secret,
    validate_target,
)
from app.alerting.message import AlertMessage

from .conftest import Receiver, Reply, SmtpServer, StartSmtp, TlsFiles

MakeMessage = Callable[..., AlertMessage]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http_client:
        yield http_client


def our_logged_text(caplog: pytest.LogCaptureFixture) -> str:
    # Only driftdesk's own records: httpx logs every request URL at INFO (a
    # Slack URL holds its token), so the service keeps the "httpx" logger at
    # WARNING; the test server's "mail.log" is not part of the service.
    return "\n".join(
        f"{record.getMessage()} {record.__dict__!r}"
        for record in caplog.records
        if record.name.startswith("app.")
    )


def test_each_kind_reaches_its_receiver(
    http_receiver: Receiver,
    smtp_server: SmtpServer,
    client: httpx.Client,
    make_message: MakeMessage,
) -> None:
    smtp = SmtpConfig(
        host=smtp_server.host,
        port=smtp_server.port,
        sender="driftdesk@alerts.example.com",
        security="none",
    )
    common = {
        "delivery_id": "dlv_1",
        "smtp": smtp,
        "http_client": client,
        "allow_private": True,
    }
    message = make_message()
    slack = send("slack", http_receiver.url, message, secret=None, **common)  # type: ignore[arg-type]
    webhook = send(
        "webhook",
        http_receiver.url,
        message,
        secret=generate_secret(),
        **common,  # type: ignore[arg-type]
    )
    email = send("email", "oncall@example.com", message, secret=None, **common)  # type: ignore[arg-type]
    assert [slack.outcome, webhook.outcome, email.outcome] == [Outcome.DELIVERED] * 3
    slack_request, webhook_request = http_receiver.requests
    assert b'"blocks"' in slack_request.body and "webhook-id" not in slack_request.headers
    assert webhook_request.headers["webhook-id"] == "dlv_1"
    assert len(smtp_server.mails) == 1


def test_missing_channel_settings_are_dead_not_crashes(
    client: httpx.Client, make_message: MakeMessage
) -> None:
    no_secret = send(
        "webhook",
        "http://127.0.0.1:9/hook",
        make_message(),
        secret=None,
        delivery_id="dlv_1",
        smtp=None,
        http_client=client,
        allow_private=True,
    )
    assert no_secret.outcome is Outcome.DEAD and "no signing secret" in (no_secret.error or "")
    bad_secret = send(
        "webhook",
        "http://127.0.0.1:9/hook",
        make_message(),
        secret="whsec_c2hvcnQ=",
        delivery_id="dlv_1",
        smtp=None,
        http_client=client,
        allow_private=True,
    )
    assert bad_secret.outcome is Outcome.DEAD and "c2hvcnQ" not in (bad_secret.error or "")
    no_smtp = send(
        "email",
        "oncall@example.com",
        make_message(),
        secret=None,
        delivery_id="dlv_1",
        smtp=None,
        http_client=client,
        allow_private=True,
    )
    assert no_smtp.outcome is Outcome.DEAD and "SMTP" in (no_smtp.error or "")


def test_invalid_arguments_raise(client: httpx.Client, make_message: MakeMessage) -> None:
    with pytest.raises(ValueError, match="kind"):
        send(
            "sms",  # type: ignore[arg-type]
            "+15555550100",
            make_message(),
            secret=None,
            delivery_id="dlv_1",
            smtp=None,
            http_client=client,
            allow_private=True,
        )
    with pytest.raises(ValueError, match="webhook id"):
        send(
            "slack",
            "http://127.0.0.1:9/hook",
            make_message(),
            secret=None,
            delivery_id="dlv.1",
            smtp=None,
            http_client=client,
            allow_private=True,
        )


def test_the_target_is_checked_again_at_send_time(
    http_receiver: Receiver, client: httpx.Client, make_message: MakeMessage
) -> None:
    # Accepted when private targets were allowed; the setting changed since.
    validate_target("slack", http_receiver.url, allow_private=True)
    result = send(
        "slack",
        http_receiver.url,
        make_message(),
        secret=None,
        delivery_id="dlv_1",
        smtp=None,
        http_client=client,
        allow_private=False,
    )
    assert result.outcome is Outcome.DEAD
    assert http_receiver.requests == []


def test_secrets_and_tokens_never_reach_logs_or_outcomes(
    http_receiver: Receiver,
    start_smtp: StartSmtp,
    tls_files: TlsFiles,
    client: httpx.Client,
    make_message: MakeMessage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = generate_secret()
    token_url = http_receiver.url + "/services/T0001/B0001/SLACKTOKEN123"
    server = start_smtp(security="starttls", credentials=("driftdesk", "right-password"))
    smtp = SmtpConfig(
        host="localhost",
        port=server.port,
        sender="driftdesk@alerts.example.com",
        username="driftdesk",
        password="wrong-password-xyz",
        ssl_context=tls_files.client_context(),
    )
    http_receiver.answer(Reply(500, body=b"boom"), Reply(200))
    outcomes = [
        send(
            "slack",
            token_url,
            make_message(),
            secret=None,
            delivery_id="dlv_1",
            smtp=None,
            http_client=client,
            allow_private=True,
        ),
        send(
            "webhook",
            http_receiver.url,
            make_message(),
            secret=secret,
            delivery_id="dlv_2",
            smtp=None,
            http_client=client,
            allow_private=True,
        ),
        send(
            "email",
            "oncall@example.com",
            make_message(),
            secret=None,
            delivery_id="dlv_3",
            smtp=smtp,
            http_client=client,
            allow_private=True,
        ),
    ]
    assert [o.outcome for o in outcomes] == [Outcome.RETRY, Outcome.DELIVERED, Outcome.DEAD]
    logged = our_logged_text(caplog)
    assert logged
    for leak in ("SLACKTOKEN123", secret, secret.removeprefix("whsec_"), "wrong-password-xyz"):
        assert leak not in logged
        assert all(leak not in repr(o) for o in outcomes)
    assert "wrong-password-xyz" not in repr(smtp)

    records = [r for r in caplog.records if r.name == "app.alerting.channels"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO, logging.ERROR]
    first = records[0].__dict__
    assert first["channel_kind"] == "slack"
    assert first["target"] == f"http://127.0.0.1:{http_receiver.port}/…"
    assert first["delivery_id"] == "dlv_1"
    assert first["outcome"] == "retry"
    assert first["status_code"] == 500
    assert first["dedup_key"] == "drift.incident:churn-classifier:42"
    assert first["duration_ms"] >= 0


def test_validate_target() -> None:
    assert validate_target("email", " a@example.com,b@example.com ", allow_private=False) == (
        "a@example.com, b@example.com"
    )
    assert validate_target("webhook", " http://127.0.0.1:8080/x ", allow_private=True) == (
        "http://127.0.0.1:8080/x"
    )
    with pytest.raises(InvalidTargetError, match="plain email address"):
        validate_target("email", "https://hooks.slack.com/x", allow_private=False)
    with pytest.raises(InvalidTargetError, match="http:// or https://"):
        validate_target("slack", "oncall@example.com", allow_private=False)
    with pytest.raises(InvalidTargetError, match="cloud metadata"):
        validate_target("webhook", "http://169.254.169.254/", allow_private=True)
    with pytest.raises(InvalidTargetError, match="link-local"):
        validate_target("webhook", "http://[fe80::1]/", allow_private=True)
    with pytest.raises(InvalidTargetError, match="private address"):
        validate_target("slack", "https://10.1.2.3/hook", allow_private=False)
    with pytest.raises(ValueError, match="kind"):
        validate_target("pager", "x", allow_private=False)  # type: ignore[arg-type]


def test_validate_secret() -> None:
    validate_secret("webhook", generate_secret())
    validate_secret("slack", None)
    validate_secret("email", None)
    with pytest.raises(ValueError, match="needs a signing secret"):
        validate_secret("webhook", None)
    with pytest.raises(ValueError, match="whsec_"):
        validate_secret("webhook", "hunter2")
    with pytest.raises(ValueError, match="no signing secret"):
        validate_secret("slack", generate_secret())


def test_redact_target() -> None:
    assert redact_target("slack", "https://hooks.slack.com/services/T/B/X") == (
        "https://hooks.slack.com/…"
    )
    assert redact_target("webhook", "https://ops.example.com:8443/in?token=abc") == (
        "https://ops.example.com:8443/…"
    )
    assert redact_target("email", "oncall@example.com") == "oncall@example.com"
