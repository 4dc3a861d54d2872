"""What became of one delivery attempt, and when to try again.

Classification (the Standard Webhooks guidance, and what Slack answers):

==========================================  ==================================
receiver answered                           outcome
==========================================  ==================================
2xx                                         ``delivered``
5xx, 429, 408, timeout, connection error    ``retry`` (after ``Retry-After`` if given)
410 Gone                                    ``disable_channel``
any other 4xx, 3xx (redirects not followed) ``dead``
SMTP 4xx / 5xx                              ``retry`` / ``dead``
==========================================  ==================================

:func:`retry_delay` turns a ``retry`` outcome and the attempt number into the
wait before the next attempt: exponential backoff with full jitter, never
shorter than what the receiver asked for, and ``None`` once
:data:`MAX_ATTEMPTS` attempts have been made (the delivery is then dead).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final

MAX_ATTEMPTS: Final = 12
BACKOFF_BASE_SECONDS: Final = 10.0
BACKOFF_CAP_SECONDS: Final = 3600.0
BACKOFF_FLOOR_SECONDS: Final = 1.0
# A receiver cannot park a delivery forever with "Retry-After: <next year>".
RETRY_AFTER_CAP_SECONDS: Final = 6 * 3600.0
EXCERPT_CHARS: Final = 300

_WHITESPACE = re.compile(r"\s+")


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"
    DISABLE_CHANNEL = "disable_channel"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """The result of one attempt, as stored on the delivery row.

    ``retry_after`` is what the receiver asked for (seconds), if anything;
    ``response_excerpt`` is the start of its answer; ``error`` says in words
    what went wrong. None of them ever contains a secret.
    """

    outcome: Outcome
    status_code: int | None = None
    retry_after: float | None = None
    response_excerpt: str = ""
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome is Outcome.DELIVERED

    @classmethod
    def success(cls, *, status_code: int | None = None, excerpt: str = "") -> DeliveryOutcome:
        return cls(Outcome.DELIVERED, status_code=status_code, response_excerpt=excerpt)

    @classmethod
    def retry(
        cls,
        error: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        excerpt: str = "",
    ) -> DeliveryOutcome:
        return cls(
            Outcome.RETRY,
            status_code=status_code,
            retry_after=retry_after,
            response_excerpt=excerpt,
            error=error,
        )

    @classmethod
    def dead(
        cls, error: str, *, status_code: int | None = None, excerpt: str = ""
    ) -> DeliveryOutcome:
        return cls(Outcome.DEAD, status_code=status_code, response_excerpt=excerpt, error=error)

    @classmethod
    def disable(
        cls, error: str, *, status_code: int | None = None, excerpt: str = ""
    ) -> DeliveryOutcome:
        return cls(
            Outcome.DISABLE_CHANNEL, status_code=status_code, response_excerpt=excerpt, error=error
        )


def excerpt(raw: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a receiver's answer, on one line, for storage and display.

    >>> excerpt(b"  invalid_payload\\n\\n  see docs ")
    'invalid_payload see docs'
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = _WHITESPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP-date).

    >>> parse_retry_after("120")
    120.0
    >>> parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT",
    ...                   now=datetime(2026, 10, 21, 7, 27, 30, tzinfo=UTC))
    30.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), RETRY_AFTER_CAP_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP-dates are GMT.
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC) if now is None else now
    return min(max((when - current).total_seconds(), 0.0), RETRY_AFTER_CAP_SECONDS)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def classify_http(
    status_code: int, headers: Mapping[str, str], body: bytes | str = b""
) -> DeliveryOutcome:
    """Classify an HTTP answer to a webhook or Slack POST.

    >>> classify_http(200, {}).outcome, classify_http(410, {}).outcome
    (<Outcome.DELIVERED: 'delivered'>, <Outcome.DISABLE_CHANNEL: 'disable_channel'>)
    >>> classify_http(429, {"Retry-After": "7"}).retry_after
    7.0
    """
    text = excerpt(body)
    if 200 <= status_code < 300:
        return DeliveryOutcome.success(status_code=status_code, excerpt=text)
    if status_code == 410:
        return DeliveryOutcome.disable(
            "the receiver answered 410 Gone: it no longer accepts messages",
            status_code=status_code,
            excerpt=text,
        )
    if status_code >= 500 or status_code in (408, 429):
        return DeliveryOutcome.retry(
            f"the receiver answered {status_code}",
            status_code=status_code,
            retry_after=parse_retry_after(_header(headers, "retry-after")),
            excerpt=text,
        )
    if 300 <= status_code < 400:
        return DeliveryOutcome.dead(
            f"the receiver answered {status_code} (a redirect); redirects are not "
            "followed, so update the channel's URL",
            status_code=status_code,
            excerpt=text,
        )
    return DeliveryOutcome.dead(
        f"the receiver rejected the message with {status_code}",
        status_code=status_code,
        excerpt=text,
    )


def backoff(
    attempt: int,
    *,
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = BACKOFF_CAP_SECONDS,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Full jitter: uniform between a small floor and ``min(cap, base * 2**(attempt-1))``,
    so many deliveries failing together do not retry together.

    >>> rng = random.Random(1)
    >>> all(1.0 <= backoff(n, rng=rng) <= min(3600.0, 10.0 * 2 ** (n - 1)) for n in range(1, 30))
    True
    """
    if attempt < 1:
        raise ValueError("attempts are numbered from 1")
    # min() before the power would overflow a float for attempt ~ 1000.
    ceiling = cap if attempt > 64 else min(cap, base * 2.0 ** (attempt - 1))
    uniform = rng.uniform if rng is not None else random.uniform
    draw = uniform(0.0, ceiling)
    return max(BACKOFF_FLOOR_SECONDS, draw)


def retry_delay(
    result: DeliveryOutcome,
    attempt: int,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt after ``result``, or ``None`` to stop.

    ``None`` when ``result`` is not a retry, or when ``attempt`` (the one that
    just failed, 1-based) was the last allowed: the delivery is then dead.
    """
    if result.outcome is not Outcome.RETRY or attempt >= max_attempts:
        return None
    delay = backoff(attempt, rng=rng)
    if result.retry_after is not None:
        delay = max(delay, result.retry_after)
    return delay
