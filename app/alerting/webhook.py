"""Generic webhooks: the JSON payload of :mod:`.message`, signed per Standard Webhooks."""

from __future__ import annotations

import time

import httpx

from app.alerting.message import AlertMessage
from app.alerting.outcome import DeliveryOutcome
from app.alerting.signing import Secrets, signature_headers
from app.alerting.transport import DEFAULT_TIMEOUT_SECONDS, post


def build_request(
    message: AlertMessage, *, secrets: Secrets, delivery_id: str, timestamp: int
) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers of one attempt.

    ``delivery_id`` becomes ``webhook-id`` and must be the same on every retry
    of the delivery; ``timestamp`` is this attempt's time (Unix seconds).
    """
    body = message.to_json_bytes()
    headers = {
        "Content-Type": "application/json",
        **signature_headers(secrets, msg_id=delivery_id, body=body, timestamp=timestamp),
    }
    return body, headers


def send_webhook(
    url: str,
    message: AlertMessage,
    *,
    secrets: Secrets,
    delivery_id: str,
    http_client: httpx.Client,
    allow_private: bool,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> DeliveryOutcome:
    """Sign and POST the message; a 2xx answer means delivered."""
    body, headers = build_request(
        message, secrets=secrets, delivery_id=delivery_id, timestamp=int(time.time())
    )
    return post(
        url,
        body=body,
        headers=headers,
        http_client=http_client,
        allow_private=allow_private,
        timeout=timeout,
    )
