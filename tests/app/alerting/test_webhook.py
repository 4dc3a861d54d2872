"""Signed generic webhooks against a real HTTP receiver on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from app.alerting.message import AlertMessage
from app.alerting.outcome import Outcome
from app.alerting.signing import generate_secret
from app.alerting.webhook import send_webhook

from .conftest import Receiver, Reply

MakeMessage = Callable[..., AlertMessage]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http_client:
        yield http_client


def spec_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, written from the spec's text."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(sig, expected)
        for version, _, sig in (e.partition(",") for e in headers["webhook-signature"].split(" "))
    )


def test_delivers_a_signed_json_payload(
    http_receiver: Receiver, client: httpx.Client, make_message: MakeMessage
) -> None:
    secret = generate_secret()
    message = make_message()
    result = send_webhook(
        http_receiver.url,
        message,
        secrets=secret,
        delivery_id="dlv_42",
        http_client=client,
        allow_private=True,
    )
    assert result.outcome is Outcome.DELIVERED
    assert result.status_code == 200
    assert result.response_excerpt == "ok"
    [request] = http_receiver.requests
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "dlv_42"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 10
    assert request.headers["user-agent"].startswith("driftdesk")
    assert spec_verify(secret, request.headers, request.body)
    assert not spec_verify(generate_secret(), request.headers, request.body)
    assert json.loads(request.body) == message.to_payload()


def test_webhook_id_is_stable_across_retries(
    http_receiver: Receiver, client: httpx.Client, make_message: MakeMessage
) -> None:
    secret = generate_secret()
    http_receiver.answer(Reply(503), Reply(200))
    outcomes = [
        send_webhook(
            http_receiver.url,
            make_message(),
            secrets=secret,
            delivery_id="dlv_7",
            http_client=client,
            allow_private=True,
        ).outcome
        for _ in range(2)
    ]
    assert outcomes == [Outcome.RETRY, Outcome.DELIVERED]
    first, second = http_receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "dlv_7"
    assert first.body == second.body
    assert spec_verify(secret, first.headers, first.body)
    assert spec_verify(secret, second.headers, second.body)


def test_rotation_signs_with_both_secrets(
    http_receiver: Receiver, client: httpx.Client, make_message: MakeMessage
) -> None:
    old, new = generate_secret(), generate_secret()
    result = send_webhook(
        http_receiver.url,
        make_message(),
        secrets=[new, old],
        delivery_id="dlv_rot",
        http_client=client,
        allow_private=True,
    )
    assert result.delivered
    [request] = http_receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert spec_verify(old, request.headers, request.body)
    assert spec_verify(new, request.headers, request.body)


@pytest.mark.parametrize(
    ("reply", "outcome", "retry_after"),
    [
        (Reply(200), Outcome.DELIVERED, None),
        (Reply(204, body=b""), Outcome.DELIVERED, None),
        (Reply(503, body=b"upstream down"), Outcome.RETRY, None),
        (Reply(503, headers={"Retry-After": "17"}), Outcome.RETRY, 17.0),
        (Reply(500), Outcome.RETRY, None),
        (Reply(429, headers={"Retry-After": "3"}), Outcome.RETRY, 3.0),
        (Reply(410, body=b"gone"), Outcome.DISABLE_CHANNEL, None),
        (Reply(400, body=b"invalid_payload"), Outcome.DEAD, None),
        (Reply(404), Outcome.DEAD, None),
        (Reply(301, headers={"Location": "http://169.254.169.254/"}), Outcome.DEAD, None),
    ],
)
def test_classification_against_the_receiver(
    http_receiver: Receiver,
    client: httpx.Client,
    make_message: MakeMessage,
    reply: Reply,
    outcome: Outcome,
    retry_after: float | None,
) -> None:
    http_receiver.answer(reply)
    result = send_webhook(
        http_receiver.url,
        make_message(),
        secrets=generate_secret(),
        delivery_id="dlv_1",
        http_client=client,
        allow_private=True,
    )
    assert result.outcome is outcome
    assert result.status_code == reply.status
    assert result.retry_after == retry_after
    assert result.response_excerpt == reply.body.decode()
    # One request each: redirects are not followed.
    assert len(http_receiver.requests) == 1


def test_retry_after_as_an_http_date(
    http_receiver: Receiver, client: httpx.Client, make_message: MakeMessage
) -> None:
    from email.utils import formatdate

    http_receiver.answer(
        Reply(429, headers={"Retry-After": formatdate(time.time() + 120, usegmt=True)})
    )
    result = send_webhook(
        http_receiver.url,
        make_message(),
        secrets=generate_secret(),
        delivery_id="dlv_1",
        http_client=client,
        allow_private=True,
    )
    assert result.outcome is Outcome.RETRY
    assert result.retry_after is not None and 115 <= result.retry_after <= 120


def test_a_receiver_that_hangs_is_retried_after_the_timeout(
    http_receiver: Receiver, client: httpx.Client, make_message: MakeMessage
) -> None:
    http_receiver.answer(Reply(hang=True))
    started = time.monotonic()
    result = send_webhook(
        http_receiver.url,
        make_message(),
        secrets=generate_secret(),
        delivery_id="dlv_1",
        http_client=client,
        allow_private=True,
        timeout=0.3,
    )
    assert time.monotonic() - started < 3
    assert result.outcome is Outcome.RETRY
    assert result.status_code is None
    assert result.error is not None and "0.3s" in result.error


def test_a_closed_port_is_retried(
    closed_port: int, client: httpx.Client, make_message: MakeMessage
) -> None:
    result = send_webhook(
        f"http://127.0.0.1:{closed_port}/hook",
        make_message(),
        secrets=generate_secret(),
        delivery_id="dlv_1",
        http_client=client,
        allow_private=True,
    )
    assert result.outcome is Outcome.RETRY
    assert result.error is not None and result.error.startswith("connection failed: ConnectError")


def test_only_the_start_of_a_huge_answer_is_kept(
    http_receiver: Receiver, client: httpx.Client, make_message: MakeMessage
) -> None:
    http_receiver.answer(Reply(400, body=b"e" * 2_000_000))
    result = send_webhook(
        http_receiver.url,
        make_message(),
        secrets=generate_secret(),
        delivery_id="dlv_1",
        http_client=client,
        allow_private=True,
    )
    assert result.outcome is Outcome.DEAD
    assert len(result.response_excerpt) == 300


def test_private_receivers_are_refused_without_the_setting(
    http_receiver: Receiver, client: httpx.Client, make_message: MakeMessage
) -> None:
    result = send_webhook(
        http_receiver.url,
        make_message(),
        secrets=generate_secret(),
        delivery_id="dlv_1",
        http_client=client,
        allow_private=False,
    )
    assert result.outcome is Outcome.DEAD
    assert result.error is not None and "loopback" in result.error
    assert http_receiver.requests == []


def test_a_host_name_is_pinned_with_its_host_header(
    http_receiver: Receiver, client: httpx.Client, make_message: MakeMessage
) -> None:
    url = f"http://localhost:{http_receiver.port}/hook"
    result = send_webhook(
        url,
        make_message(),
        secrets=generate_secret(),
        delivery_id="dlv_1",
        http_client=client,
        allow_private=True,
    )
    assert result.delivered
    [request] = http_receiver.requests
    assert request.headers["host"] == f"localhost:{http_receiver.port}"


def test_https_to_a_pinned_host_verifies_the_certificate_for_the_name(
    https_receiver: Receiver, tls_files: object, make_message: MakeMessage
) -> None:
    from .conftest import TlsFiles

    assert isinstance(tls_files, TlsFiles)
    url = f"https://localhost:{https_receiver.port}/hook"
    with httpx.Client(verify=tls_files.client_context()) as trusting:
        result = send_webhook(
            url,
            make_message(),
            secrets=generate_secret(),
            delivery_id="dlv_tls",
            http_client=trusting,
            allow_private=True,
        )
    assert result.delivered, result.error
    [request] = https_receiver.requests
    assert request.headers["host"] == f"localhost:{https_receiver.port}"
    assert request.headers["connection"] == "close"

    # The same server, not trusted: a certificate problem is a failed connection.
    with httpx.Client() as default_trust:
        untrusted = send_webhook(
            url,
            make_message(),
            secrets=generate_secret(),
            delivery_id="dlv_tls",
            http_client=default_trust,
            allow_private=True,
        )
    assert untrusted.outcome is Outcome.RETRY
    assert untrusted.error is not None and "CERTIFICATE_VERIFY_FAILED" in untrusted.error
