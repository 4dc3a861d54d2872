"""One HTTP POST to a checked, pinned target, classified into a :class:`DeliveryOutcome`.

Shared by the Slack and the generic webhook channels. Never raises for
anything the receiver or the network does; redirects are not followed; only
the first few kilobytes of an answer are read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

import httpx

from app.alerting.outcome import DeliveryOutcome, classify_http
from app.alerting.targets import (
    InvalidTargetError,
    UnresolvableTargetError,
    check_url,
    pinned_request,
    redact_url,
)

DEFAULT_TIMEOUT_SECONDS: Final = 10.0
MAX_RESPONSE_BYTES: Final = 4096
USER_AGENT: Final = "driftdesk-alerts/1"


class _RedactRequestUrls(logging.Filter):
    """httpx logs each request's full URL at INFO, and a Slack hook's path is its token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(arg)) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_RedactRequestUrls())


def _read_head(response: httpx.Response) -> bytes:
    received = bytearray()
    for chunk in response.iter_bytes():
        received += chunk
        if len(received) >= MAX_RESPONSE_BYTES:
            break
    return bytes(received[:MAX_RESPONSE_BYTES])


def post(
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    http_client: httpx.Client,
    allow_private: bool,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> DeliveryOutcome:
    """POST ``body`` to ``url`` after checking where it resolves (see :mod:`.targets`)."""
    try:
        target = check_url(url, allow_private=allow_private)
    except UnresolvableTargetError as exc:
        return DeliveryOutcome.retry(str(exc))
    except InvalidTargetError as exc:
        return DeliveryOutcome.dead(f"target refused: {exc}")
    pinned = pinned_request(target)
    request = http_client.build_request(
        "POST",
        pinned.url,
        content=body,
        headers={"User-Agent": USER_AGENT, **headers, **pinned.headers},
        extensions=dict(pinned.extensions),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
    )
    try:
        response = http_client.send(request, stream=True, follow_redirects=False)
    except httpx.TimeoutException as exc:
        return DeliveryOutcome.retry(f"no answer within {timeout:g}s ({type(exc).__name__})")
    except httpx.TransportError as exc:
        # httpx's transport errors name the OS error, not the URL; make sure a
        # Slack token in the path could never reach the stored error anyway.
        text = str(exc).replace(target.url.path, "/…") if target.url.path != "/" else str(exc)
        return DeliveryOutcome.retry(f"connection failed: {type(exc).__name__}: {text}")
    try:
        head = _read_head(response)
    except httpx.HTTPError:
        # The status line arrived; the body did not. The status still decides.
        head = b""
    finally:
        response.close()
    return classify_http(response.status_code, response.headers, head)
