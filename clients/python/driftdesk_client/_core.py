"""The buffering, batching and retry logic shared by Monitor and AsyncMonitor.

Nothing here does I/O: `Pipeline.process` is a generator that yields the HTTP
requests to make and is sent back what happened, so the thread-based
`Monitor` and the asyncio-based `AsyncMonitor` drive the very same decisions.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import quote

logger = logging.getLogger("driftdesk_client")

PREDICTIONS: Final = 0
FEEDBACK: Final = 1
STREAMS: Final = ("predictions", "feedback")

#: A Retry-After longer than this (seconds) is capped: a monitor must keep trying.
MAX_RETRY_AFTER: Final = 600.0
#: How often (seconds) the same kind of warning may be logged.
WARN_EVERY: Final = 30.0

# A queued record is a tuple whose first item is the time.monotonic() at which it
# was queued and whose second item is its id. Predictions:
#   (queued_at, id, timestamp, features, prediction, confidence, probabilities, model_version)
# Feedback:
#   (queued_at, id, label)
Record = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class MonitorStats:
    """Counters of a `Monitor` or `AsyncMonitor`, in records.

    - ``sent``: acknowledged by the server (2xx), duplicates included.
    - ``retried``: re-queued for another attempt after a failed one (5xx, 429,
      network error); a record retried three times counts three.
    - ``dropped``: lost on the client: pushed out of the full buffer (oldest
      first), logged after ``close()``, undelivered when ``close()`` gave up, or
      given up after ``max_retries``.
    - ``rejected``: refused by the server with a 4xx other than 429 (the body is
      logged), or not serialisable to JSON (NaN, infinity, unknown types).
    - ``duplicates``: of ``sent``, those the server already had (a retry of a
      batch it had stored but could not acknowledge).
    - ``pending``: queued or in flight right now.
    """

    sent: int
    retried: int
    dropped: int
    rejected: int
    duplicates: int
    pending: int


@dataclass(frozen=True, slots=True)
class Request:
    """A POST to make: path relative to the base URL, JSON body, record count."""

    path: str
    body: bytes
    count: int


@dataclass(frozen=True, slots=True)
class Response:
    """What the server answered to a `Request`."""

    status: int
    text: str
    retry_after: str | None


Outcome = Response | BaseException


def _json_default(value: Any) -> Any:
    """Convert the values a model server commonly holds (numpy, Decimal, dates)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, pandas objects
    if callable(tolist):
        return tolist()
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """Strict JSON: NaN and infinity are errors, as the server would reject them."""
    return json.dumps(
        value, default=_json_default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
    ).encode()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def bad_indices(text: str, stream: str, count: int) -> set[int]:
    """Indices of the records a 422 error body points at (``[stream, i, ...]``)."""
    try:
        body = json.loads(text)
    except ValueError:
        return set()
    found: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for first, second in itertools.pairwise(node):
                if (
                    first == stream
                    and isinstance(second, int)
                    and not isinstance(second, bool)
                    and 0 <= second < count
                ):
                    found.add(second)
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)

    error = body.get("error") if isinstance(body, dict) else None
    walk(error.get("details") if isinstance(error, dict) else body)
    return found


class Pipeline:
    """Bounded queues, counters, and the per-batch decisions (no I/O).

    ``notify`` is called with ``lock`` held whenever the sender should look at
    the queues again (a queue became non-empty, a batch filled up, a flush or a
    close was asked for).
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int,
        flush_interval: float,
        max_buffer: int,
        max_retries: int | None,
        backoff_base: float,
        backoff_max: float,
        notify: Callable[[], None],
    ) -> None:
        if not model:
            raise ValueError("model must be a non-empty name")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_buffer < batch_size:
            raise ValueError("max_buffer must be at least batch_size")
        if flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if max_retries is not None and max_retries < 0:
            raise ValueError("max_retries must be None or >= 0")
        if backoff_base <= 0 or backoff_max < backoff_base:
            raise ValueError("need 0 < backoff_base <= backoff_max")
        self.model = model
        name = quote(model, safe="")
        self.paths = (f"/v1/models/{name}/predictions", f"/v1/models/{name}/feedback")
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.notify = notify
        self.lock = threading.Lock()
        self.queues: tuple[deque[Record], deque[Record]] = (deque(), deque())
        # Per stream: records ever queued, and records whose fate is settled
        # (sent, rejected or dropped). Each stream is FIFO, so "resolved >= n"
        # means the first n records of that stream are settled.
        self.enqueued = [0, 0]
        self.resolved = [0, 0]
        self.flush_target = [0, 0]
        self.inflight = 0
        self.closed = False
        self.sent = 0
        self.retried = 0
        self.dropped = 0
        self.rejected = 0
        self.duplicates = 0
        self.failures = 0  # consecutive failed attempts, for the backoff
        self.head_attempts = 0  # failed attempts of the batch at the head
        self._warned: dict[str, float] = {}
        self._naive_warned = False
        self._seconds: dict[int, str] = {}  # epoch second -> "YYYY-MM-DDTHH:MM:SS"

    # -- called by log() / feedback(), any thread ---------------------------------

    def put(self, stream: int, record: Record) -> None:
        with self.lock:
            self.enqueued[stream] += 1
            if self.closed:
                self.dropped += 1
                self.resolved[stream] += 1
                self.warn("closed", "driftdesk monitor is closed; records logged now are dropped")
                return
            queue = self.queues[stream]
            if len(queue) >= self.max_buffer:
                queue.popleft()
                self.dropped += 1
                self.resolved[stream] += 1
                self.warn(
                    "overflow",
                    "driftdesk buffer full (%d records): dropping the oldest (%d dropped so far)",
                    self.max_buffer,
                    self.dropped,
                )
            queue.append(record)
            size = len(queue)
            if size == 1 or size == self.batch_size:
                self.notify()

    def reject_early(self, reason: str) -> None:
        """A record that could not even be queued (log() never raises)."""
        with self.lock:
            self.rejected += 1
            self.warn("early", "driftdesk record rejected: %s", reason)

    # -- called by the sender, with ``lock`` held ---------------------------------

    def next_action(self, now: float) -> tuple[int | None, float | None]:
        """The stream to send a batch of now, or (None, seconds to wait | None)."""
        ready: int | None = None
        ready_at = 0.0
        wait: float | None = None
        for stream in (PREDICTIONS, FEEDBACK):
            queue = self.queues[stream]
            if not queue:
                continue
            head = queue[0][0]
            due = head + self.flush_interval - now
            if (
                len(queue) >= self.batch_size
                or due <= 0
                or self.closed
                or self.flush_target[stream] > self.resolved[stream]
            ):
                if ready is None or head < ready_at:  # oldest head first
                    ready, ready_at = stream, head
            elif wait is None or due < wait:
                wait = due
        if ready is not None:
            return ready, None
        return None, wait

    def take(self, stream: int) -> list[Record]:
        queue = self.queues[stream]
        count = min(len(queue), self.batch_size)
        batch = [queue.popleft() for _ in range(count)]
        self.inflight += count
        return batch

    def request_flush(self) -> tuple[int, int]:
        target = (self.enqueued[0], self.enqueued[1])
        for stream in (PREDICTIONS, FEEDBACK):
            self.flush_target[stream] = max(self.flush_target[stream], target[stream])
        self.notify()
        return target

    def reached(self, target: tuple[int, int]) -> bool:
        return self.resolved[0] >= target[0] and self.resolved[1] >= target[1]

    def abandon(self) -> int:
        """Drop everything still queued (close() gave up); returns how many."""
        count = 0
        for stream in (PREDICTIONS, FEEDBACK):
            queue = self.queues[stream]
            count += len(queue)
            self.resolved[stream] += len(queue)
            queue.clear()
        self.dropped += count
        return count

    def pending(self) -> int:
        return len(self.queues[0]) + len(self.queues[1]) + self.inflight

    def stats(self) -> MonitorStats:
        with self.lock:
            return MonitorStats(
                sent=self.sent,
                retried=self.retried,
                dropped=self.dropped,
                rejected=self.rejected,
                duplicates=self.duplicates,
                pending=self.pending(),
            )

    def warn(self, key: str, message: str, *args: Any) -> None:
        """Log a warning, at most once per WARN_EVERY seconds for the same key."""
        now = time.monotonic()
        last = self._warned.get(key)
        if last is None or now - last >= WARN_EVERY:
            self._warned[key] = now
            logger.warning(message, *args)

    # -- the per-batch decisions ----------------------------------------------------

    def process(
        self, stream: int, batch: list[Record]
    ) -> Generator[Request, Outcome, float | None]:
        """Send ``batch`` (taken with `take`); returns None when every record is
        settled, or the seconds to wait before the next attempt when the rest
        was put back at the head of its queue.
        """
        work = [batch]
        while work:
            part = work.pop()
            body, part = self._encode(stream, part)
            if body is None:
                continue
            outcome = yield Request(self.paths[stream], body, len(part))
            if isinstance(outcome, BaseException):
                reason = f"{type(outcome).__name__}: {outcome}".rstrip(": ")
                return self._retry(stream, part, work, None, reason)
            status = outcome.status
            if 200 <= status < 300:
                self._delivered(stream, part, outcome.text)
            elif status == 429 or status >= 500:
                return self._retry(stream, part, work, outcome.retry_after, f"HTTP {status}")
            elif status in (413, 422) and len(part) > 1:
                # The server stores nothing of a rejected batch: find the bad
                # records (named in the error, or by halving) and resend the rest.
                bad = (
                    bad_indices(outcome.text, STREAMS[stream], len(part))
                    if status == 422
                    else set()
                )
                if bad:
                    self._reject(stream, [part[i] for i in sorted(bad)], status, outcome.text)
                    rest = [record for i, record in enumerate(part) if i not in bad]
                    if rest:
                        work.append(rest)
                else:
                    middle = len(part) // 2
                    work.append(part[middle:])
                    work.append(part[:middle])
            else:
                self._reject(stream, part, status, outcome.text)
        return None

    def _encode(self, stream: int, part: list[Record]) -> tuple[bytes | None, list[Record]]:
        convert = self._prediction if stream == PREDICTIONS else _feedback
        key = STREAMS[stream]
        try:
            return dumps({key: [convert(record) for record in part]}), part
        except Exception:
            pass
        good: list[Record] = []
        items: list[dict[str, Any]] = []
        for record in part:
            try:
                item = convert(record)
                dumps(item)
            except Exception as exc:
                with self.lock:
                    self.inflight -= 1
                    self.resolved[stream] += 1
                    self.rejected += 1
                    self.warn(
                        "encode",
                        "driftdesk record %r not sent: %s (not valid JSON)",
                        record[1],
                        exc,
                    )
            else:
                good.append(record)
                items.append(item)
        if not good:
            return None, good
        return dumps({key: items}), good

    def _prediction(self, record: Record) -> dict[str, Any]:
        _, id_, timestamp, features, prediction, confidence, probabilities, version = record
        item: dict[str, Any] = {
            "id": id_,
            "timestamp": self._timestamp(timestamp),
            "features": features,
            "prediction": prediction,
        }
        if confidence is not None:
            item["confidence"] = confidence
        if probabilities is not None:
            item["probabilities"] = probabilities
        if version is not None:
            item["model_version"] = version
        return item

    def _timestamp(self, value: object) -> str:
        if isinstance(value, str):
            return value  # sent as given; the server validates it
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                if not self._naive_warned:
                    self._naive_warned = True
                    logger.warning(
                        "driftdesk: naive datetime timestamps are treated as UTC "
                        "(pass timezone-aware datetimes to silence this warning)"
                    )
                value = value.replace(tzinfo=UTC)
            return value.isoformat()
        if isinstance(value, float | int) and not isinstance(value, bool):
            return self._epoch(value)
        raise TypeError(
            f"timestamp must be a datetime, an RFC 3339 string or epoch seconds, "
            f"not {type(value).__name__}"
        )

    def _epoch(self, value: float) -> str:
        """RFC 3339 UTC with microseconds; the date-time part is cached per second."""
        second = math.floor(value)
        micro = round((value - second) * 1_000_000)
        if micro == 1_000_000:
            second, micro = second + 1, 0
        prefix = self._seconds.get(second)
        if prefix is None:
            if len(self._seconds) > 64:
                self._seconds.clear()
            prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._seconds[second] = prefix
        return f"{prefix}.{micro:06d}Z"

    def _delivered(self, stream: int, part: list[Record], text: str) -> None:
        duplicates = 0
        try:
            body = json.loads(text) if text else None
            if isinstance(body, dict) and isinstance(body.get("duplicates"), int):
                duplicates = min(max(body["duplicates"], 0), len(part))
        except ValueError:
            pass
        with self.lock:
            if self.failures:
                logger.info("driftdesk reachable again after %d failed attempts", self.failures)
            self.failures = 0
            self.head_attempts = 0
            self.inflight -= len(part)
            self.resolved[stream] += len(part)
            self.sent += len(part)
            self.duplicates += duplicates

    def _reject(self, stream: int, part: list[Record], status: int, text: str) -> None:
        with self.lock:
            self.failures = 0
            self.head_attempts = 0
            self.inflight -= len(part)
            self.resolved[stream] += len(part)
            self.rejected += len(part)
            self.warn(
                f"reject-{status}",
                "driftdesk rejected %d %s (HTTP %d, not retried): %s",
                len(part),
                STREAMS[stream],
                status,
                text[:2000],
            )

    def _retry(
        self,
        stream: int,
        part: list[Record],
        work: list[list[Record]],
        retry_after: str | None,
        reason: str,
    ) -> float:
        remaining = part + [record for piece in reversed(work) for record in piece]
        count = len(remaining)
        with self.lock:
            self.inflight -= count
            self.failures += 1
            self.head_attempts += 1
            if self.closed or (
                self.max_retries is not None and self.head_attempts > self.max_retries
            ):
                self.head_attempts = 0
                self.dropped += count
                self.resolved[stream] += count
                self.warn(
                    "give-up",
                    "driftdesk: dropping %d %s after %d failed attempts (%s)",
                    count,
                    STREAMS[stream],
                    self.failures,
                    reason,
                )
            else:
                queue = self.queues[stream]
                queue.extendleft(reversed(remaining))
                overflow = max(len(queue) - self.max_buffer, 0)
                for _ in range(overflow):
                    queue.popleft()
                self.dropped += overflow
                self.resolved[stream] += overflow
                self.retried += max(count - overflow, 0)
                self.warn(
                    "retry",
                    "driftdesk unavailable (%s); buffering %d records and retrying",
                    reason,
                    self.pending(),
                )
            failures = self.failures
        delay = parse_retry_after(retry_after)
        if delay is None:
            ceiling = min(self.backoff_max, self.backoff_base * 2 ** min(failures - 1, 60))
            delay = ceiling * random.uniform(0.5, 1.0)
        return delay


def _feedback(record: Record) -> dict[str, Any]:
    return {"id": record[1], "label": record[2]}
