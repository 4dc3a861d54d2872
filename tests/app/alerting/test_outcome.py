from __future__ import annotations

import datetime as dt
import random
import statistics

import pytest

from app.alerting.outcome import (
    BACKOFF_CAP_SECONDS,
    MAX_ATTEMPTS,
    RETRY_AFTER_CAP_SECONDS,
    DeliveryOutcome,
    Outcome,
    backoff,
    classify_http,
    excerpt,
    parse_retry_after,
    retry_delay,
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Outcome.DELIVERED),
        (201, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (301, Outcome.DEAD),
        (400, Outcome.DEAD),
        (401, Outcome.DEAD),
        (403, Outcome.DEAD),
        (404, Outcome.DEAD),
        (408, Outcome.RETRY),
        (410, Outcome.DISABLE_CHANNEL),
        (413, Outcome.DEAD),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (504, Outcome.RETRY),
    ],
)
def test_http_classification(status: int, expected: Outcome) -> None:
    result = classify_http(status, {}, b"body")
    assert result.outcome is expected
    assert result.status_code == status
    assert result.response_excerpt == "body"
    assert (result.error is None) == (expected is Outcome.DELIVERED)


def test_retry_after_is_read_case_insensitively() -> None:
    assert classify_http(503, {"Retry-After": "30"}).retry_after == 30.0
    assert classify_http(429, {"retry-after": "5"}).retry_after == 5.0
    assert classify_http(500, {}).retry_after is None


def test_retry_after_forms() -> None:
    now = dt.datetime(2026, 10, 21, 7, 27, 0, tzinfo=dt.UTC)
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now=now) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:00:00 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after("99999999") == RETRY_AFTER_CAP_SECONDS
    assert parse_retry_after("Fri, 21 Oct 2039 07:28:00 GMT", now=now) == RETRY_AFTER_CAP_SECONDS
    for junk in ("", "-5", "1.5", "tomorrow", "Wed, 99 Foo 2026"):
        assert parse_retry_after(junk) is None, junk


def test_excerpt_is_short_and_one_line() -> None:
    assert excerpt(b"a\r\n  b\tc") == "a b c"
    long = excerpt(b"x" * 10_000)
    assert len(long) == 300 and long.endswith("…")
    assert excerpt(b"\xff\xfeok") == "\ufffd\ufffdok"


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt in range(1, 40):
        ceiling = min(BACKOFF_CAP_SECONDS, 10.0 * 2 ** (attempt - 1))
        draws = [backoff(attempt, rng=rng) for _ in range(300)]
        assert all(1.0 <= d <= ceiling for d in draws)
        if ceiling >= 100:
            # Full jitter spreads over the whole range, not just near the ceiling.
            assert min(draws) < 0.1 * ceiling
            assert max(draws) > 0.9 * ceiling
            assert 0.4 * ceiling < statistics.fmean(draws) < 0.6 * ceiling
    assert backoff(10_000, rng=rng) <= BACKOFF_CAP_SECONDS
    with pytest.raises(ValueError, match="from 1"):
        backoff(0)


def test_retry_delay_honours_retry_after_and_stops_at_the_last_attempt() -> None:
    rng = random.Random(3)
    asked = DeliveryOutcome.retry("503", status_code=503, retry_after=900.0)
    assert retry_delay(asked, 1, rng=rng) == 900.0
    plain = DeliveryOutcome.retry("timeout")
    delay = retry_delay(plain, 3, rng=rng)
    assert delay is not None and 1.0 <= delay <= 40.0
    assert retry_delay(plain, MAX_ATTEMPTS - 1, rng=rng) is not None
    assert retry_delay(plain, MAX_ATTEMPTS, rng=rng) is None
    for final in (
        DeliveryOutcome.success(status_code=200),
        DeliveryOutcome.dead("400"),
        DeliveryOutcome.disable("410"),
    ):
        assert retry_delay(final, 1) is None
