"""Prometheus metrics in the text exposition format, without a client library.

Counters and histograms live in this process (each uvicorn worker reports its
own, as Prometheus expects of separate targets); gauges about the database
(queue depth, ...) are read at scrape time by the collectors app/ops/endpoints.py lists.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Sample = tuple[str, dict[str, str], float]


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    inner = ",".join(
        f'{n}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace(chr(10), " ")}"'
        for n, v in zip(names, values, strict=True)
    )
    return "{" + inner + "}"


@dataclass
class Counter:
    name: str
    help: str
    labelnames: tuple[str, ...] = ()
    _values: dict[tuple[str, ...], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        with self._lock:
            items = sorted(self._values.items())
        for labels, value in items:
            yield f"{self.name}{_labels(self.labelnames, labels)} {value}"


DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    name: str
    help: str
    labelnames: tuple[str, ...] = ()
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    _counts: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    _sums: dict[tuple[str, ...], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            counts = self._counts.setdefault(labels, [0] * (len(self.buckets) + 1))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sums[labels] = self._sums.get(labels, 0.0) + value

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._counts.items())
            sums = dict(self._sums)
        names = (*self.labelnames, "le")
        for labels, counts in items:
            running = 0
            for bound, c in zip((*self.buckets, float("inf")), counts, strict=True):
                running += c
                le = "+Inf" if bound == float("inf") else repr(bound)
                yield f"{self.name}_bucket{_labels(names, (*labels, le))} {running}"
            yield f"{self.name}_sum{_labels(self.labelnames, labels)} {sums[labels]}"
            yield f"{self.name}_count{_labels(self.labelnames, labels)} {running}"


REQUESTS = Counter(
    "driftdesk_http_requests_total",
    "HTTP requests by route and status.",
    ("method", "route", "status"),
)
LATENCY = Histogram(
    "driftdesk_http_request_duration_seconds", "HTTP request latency by route.", ("method", "route")
)
RECORDS_INGESTED = Counter(
    "driftdesk_records_ingested_total", "Prediction records stored, per model.", ("model",)
)
RECORDS_REJECTED = Counter(
    "driftdesk_records_rejected_total",
    "Prediction batches rejected as invalid, per model.",
    ("model",),
)

_METRICS: list[Counter | Histogram] = [REQUESTS, LATENCY, RECORDS_INGESTED, RECORDS_REJECTED]
# Gauges read at scrape time: each returns (name, help, samples).
Collector = Callable[[Session], tuple[str, str, list[Sample]]]


def render(session: Session, collectors: Sequence[Collector]) -> str:
    """The process's counters and histograms, then the gauges of ``collectors``."""
    lines: list[str] = []
    for metric in _METRICS:
        lines.extend(metric.render())
    for collector in collectors:
        name, help_text, samples = collector(session)
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for sample_name, labels, value in samples:
            keys = tuple(labels)
            lines.append(f"{sample_name}{_labels(keys, tuple(labels[k] for k in keys))} {value}")
    return "\n".join(lines) + "\n"


class RequestMetrics:
    """Counts requests and times them by route template (pure ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.inc(scope["method"], path, str(status))
            LATENCY.observe(time.perf_counter() - started, scope["method"], path)
