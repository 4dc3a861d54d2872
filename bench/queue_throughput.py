"""Exception-queue throughput over HTTP: concurrent reviewers claim and resolve until empty.

For each backend (a temporary SQLite file, and PostgreSQL when
``DRIFTDESK_TEST_POSTGRES_URL`` or ``--postgres URL`` is given, on a fresh
database dropped afterwards) this starts a real ``driftdesk serve``, opens
5,000 low-confidence tickets through the HTTP ingest, then lets 4 reviewer
clients (keep-alive http.client connections, one API key each) claim + resolve
until the queue answers 204. It prints claim+resolve cycles per second and claim latency percentiles per
backend, side by side, and checks every ticket was resolved exactly once.

    .venv/bin/python bench/queue_throughput.py [--tickets 5000] [--reviewers 4] [--workers 2] [--postgres URL]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._server import DriftdeskServer, scratch_postgres  # noqa: E402

ADMIN = "dd_bench_admin_secret_0123456789abcdef"
BATCH = 1000


@dataclass
class Result:
    backend: str
    tickets: int = 0
    cycles: int = 0
    seconds: float = 0.0
    ingest_seconds: float = 0.0
    claim_ms: list[float] = field(default_factory=list)
    resolve_ms: list[float] = field(default_factory=list)

    def pct(self, values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def create_tickets(admin: httpx.Client, n: int) -> int:
    r = admin.post(
        "/v1/models",
        json={
            "name": "bench",
            "task": "classification",
            "features": [
                {"name": "age", "type": "numerical"},
                {"name": "plan", "type": "categorical"},
            ],
            "labels": ["stay", "churn"],
            "confidence_threshold": 0.6,
        },
    )
    r.raise_for_status()
    opened = 0
    for start in range(0, n, BATCH):
        batch = [
            {
                "id": f"b-{i}",
                "features": {"age": 20 + i % 50, "plan": ("free", "pro", "team")[i % 3]},
                "prediction": "stay" if i % 2 else "churn",
                "confidence": 0.3 + (i % 25) / 100,
            }
            for i in range(start, min(n, start + BATCH))
        ]
        r = admin.post("/v1/models/bench/predictions", json={"predictions": batch}, timeout=120)
        r.raise_for_status()
        opened += r.json()["exceptions"]
    return opened


class Reviewer:
    """One reviewer's keep-alive connection: stdlib ``http.client`` and orjson.

    The load generator shares the machine's two cores with the server and the
    database; httpx spent ~1 ms of CPU per request here, http.client ~0.25 ms,
    so this client leaves the cores to what is being measured.
    """

    def __init__(self, url: str, secret: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        payload = orjson.dumps(body) if body is not None else b""
        self.conn.request("POST", path, body=payload, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status >= 400:
            raise RuntimeError(f"POST {path}: {response.status} {data[:300]!r}")
        return response.status, orjson.loads(data) if data else None

    def close(self) -> None:
        self.conn.close()


def reviewer(
    url: str, secret: str, result: Result, lock: threading.Lock, go: threading.Barrier
) -> None:
    claims: list[float] = []
    resolves: list[float] = []
    client = Reviewer(url, secret)
    try:
        go.wait()
        while True:
            t0 = time.perf_counter()
            status, ticket = client.post("/v1/tickets/claim")
            claims.append((time.perf_counter() - t0) * 1000)
            if status == 204:
                break
            t1 = time.perf_counter()
            client.post(
                f"/v1/tickets/{ticket['id']}/resolve",
                {"label": "stay", "lease_token": ticket["lease_token"]},
            )
            resolves.append((time.perf_counter() - t1) * 1000)
    finally:
        client.close()
    with lock:
        result.claim_ms += claims[:-1]  # the last claim is the empty queue's 204
        result.resolve_ms += resolves
        result.cycles += len(resolves)


def run(backend: str, database_url: str, tickets: int, reviewers: int, workers: int) -> Result:
    result = Result(backend)
    env = {"DRIFTDESK_DATABASE_URL": database_url, "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": ADMIN}
    # with its background loops (the lease reaper among them), as `driftdesk serve` runs
    with (
        DriftdeskServer(env=env, args=["--workers", str(workers)]) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
        ) as admin,
    ):
        t0 = time.perf_counter()
        result.tickets = create_tickets(admin, tickets)
        result.ingest_seconds = time.perf_counter() - t0
        secrets = []
        for i in range(reviewers):
            r = admin.post("/v1/keys", json={"name": f"reviewer-{i}", "scopes": ["review"]})
            r.raise_for_status()
            secrets.append(r.json()["secret"])
        lock = threading.Lock()
        go = threading.Barrier(reviewers + 1)
        threads = [
            threading.Thread(target=reviewer, args=(server.url, s, result, lock, go))
            for s in secrets
        ]
        for t in threads:
            t.start()
        go.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        result.seconds = time.perf_counter() - t0
        summary = admin.get("/v1/tickets/summary").json()
        finished = sum(x["resolved"] for x in summary["finished_last_hour"])
        if summary["open"] or summary["claimed"] or finished != result.tickets:
            raise RuntimeError(f"queue not drained exactly once: {summary}")
        if result.cycles != result.tickets:
            raise RuntimeError(f"{result.cycles} cycles for {result.tickets} tickets")
    return result


def _brief(r: Result) -> str:
    return (
        f"{r.backend}: {r.cycles} cycles in {r.seconds:.1f}s = {r.cycles / r.seconds:.0f}/s, "
        f"claim p50 {r.pct(r.claim_ms, 0.5):.1f} ms p99 {r.pct(r.claim_ms, 0.99):.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--reviewers", type=int, default=4)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DRIFTDESK_TEST_POSTGRES_URL"),
        help="PostgreSQL URL (default: $DRIFTDESK_TEST_POSTGRES_URL); a scratch database is made",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="uvicorn worker processes (one per core here)"
    )
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args(argv)

    results: list[Result] = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="dd-bench-db-") as tmp:
            print("sqlite: running ...", file=sys.stderr, flush=True)
            results.append(
                run(
                    "sqlite",
                    f"sqlite:///{tmp}/bench.db",
                    args.tickets,
                    args.reviewers,
                    args.workers,
                )
            )
            print(_brief(results[-1]), file=sys.stderr, flush=True)
    if args.postgres:
        with scratch_postgres(args.postgres) as url:
            print("postgresql: running ...", file=sys.stderr, flush=True)
            results.append(run("postgresql", url, args.tickets, args.reviewers, args.workers))
            print(_brief(results[-1]), file=sys.stderr, flush=True)
    else:
        print("postgresql: skipped (give --postgres URL)", file=sys.stderr)

    rows = [
        ("tickets (via HTTP ingest)", lambda r: f"{r.tickets}"),
        ("ingest seconds", lambda r: f"{r.ingest_seconds:.2f}"),
        ("reviewers", lambda r: f"{args.reviewers}"),
        ("server workers", lambda r: f"{args.workers}"),
        ("claim+resolve cycles", lambda r: f"{r.cycles}"),
        ("seconds", lambda r: f"{r.seconds:.2f}"),
        ("cycles/s", lambda r: f"{r.cycles / r.seconds:.0f}"),
        ("claim p50 ms", lambda r: f"{r.pct(r.claim_ms, 0.50):.1f}"),
        ("claim p99 ms", lambda r: f"{r.pct(r.claim_ms, 0.99):.1f}"),
        ("claim mean ms", lambda r: f"{statistics.fmean(r.claim_ms):.1f}"),
        ("resolve p50 ms", lambda r: f"{r.pct(r.resolve_ms, 0.50):.1f}"),
        ("resolve p99 ms", lambda r: f"{r.pct(r.resolve_ms, 0.99):.1f}"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'':<{width}}  " + "  ".join(f"{r.backend:>12}" for r in results))
    for label, cell in rows:
        print(f"{label:<{width}}  " + "  ".join(f"{cell(r):>12}" for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
