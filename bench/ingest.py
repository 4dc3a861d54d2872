"""Ingest throughput: `driftdesk serve` against a bare endpoint that only parses the body.

Starts, in one run:

* a bare FastAPI app under uvicorn whose one route reads the request body and
  parses it as JSON (the ceiling: HTTP plus JSON, nothing else);
* two floors: the same kind of app whose route parses the body and stores the
  records in a SQLite file with one durable commit per batch, with no validation,
  no sketches and no rules: the least that answers 202 for stored, idempotent
  records, so the gap between them and the ceiling is storage alone. ``rows``
  stores each record as a row (its id under a unique constraint, the features
  as JSON text); ``blob`` stores the body as one blob and only the ids in an
  index, the least storage that still refuses a duplicate id;
* a real `driftdesk serve` (uvicorn, one worker, SQLite on a temporary file with
  the default `synchronous=FULL`, background loops on) and, with `--postgres URL`,
  a second one on PostgreSQL (a fresh database created beside URL's and dropped after);

creates a classification model of 25 features (20 numerical, 5 categorical) with
a reference of 20,000 rows (so every batch is also counted into window blocks)
and a confidence threshold (so low-confidence records open tickets), then posts
batches of 1,000 records with fresh ids from 4 concurrent clients for ~20 s per
server and prints records/s and p50/p99 batch latency side by side.

With ``--postgres`` it then runs 2 ``serve --no-background`` replicas and one
``driftdesk worker`` on one fresh PostgreSQL database, one model, the clients
spread over the replicas, and samples ``pg_stat_activity`` every 5 ms for
sessions waiting on a lock (``wait_event_type = 'Lock'``): the share of request
time spent waiting on locks.

Targets on a 2-core machine (issue 17): driftdesk on SQLite at ≤ 2× the rows
floor's CPU per record and ≥ 50% of its rate; PostgreSQL at ≥ SQLite's rate;
p99 < 250 ms on both with the background loops on; the replicas under 5% of
request time waiting on locks. (Also ≥ 20,000 records/s; the bare endpoint's
rate is printed beside every figure: the machine's speed.)

    python bench/ingest.py
    python bench/ingest.py --postgres postgresql+psycopg://postgres@127.0.0.1/postgres
    python bench/ingest.py --seconds 5 --clients 2     # a quick look
    python bench/ingest.py --postgres URL --skip-floor --skip-sqlite --skip-single  # replicas
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._data import KINDS, synthetic  # noqa: E402
from bench._server import (  # noqa: E402
    DriftdeskServer,
    driftdesk_command,
    free_port,
    scratch_postgres,
)

ADMIN = "dd_bench_ingest_admin_0123456789"
LABELS = ["no", "yes"]
MODEL = "bench-ingest"
PATH = f"/v1/models/{MODEL}/predictions"
SQLITE = "driftdesk, SQLite"
POSTGRES = "driftdesk, PostgreSQL"
# a loaded machine can take minutes to start a server's worker processes
START_TIMEOUT = 300.0


# --------------------------------------------------------------------------- the ceiling
def bare_app() -> FastAPI:
    """The ceiling: one route that reads the body and parses it, nothing else."""
    app = FastAPI()

    @app.post("/ingest", status_code=202)
    async def ingest(request: Request) -> dict[str, int]:
        body = orjson.loads(await request.body())
        return {"accepted": len(body["predictions"]), "duplicates": 0, "exceptions": 0}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --------------------------------------------------------------------------- the floor
FLOOR_DB = "DRIFTDESK_BENCH_FLOOR_DB"
FLOOR_LAYOUT = "DRIFTDESK_BENCH_FLOOR_LAYOUT"
_FLOOR_TABLES = {
    # a row per record, as driftdesk stores them (with one index where it has three)
    "rows": [
        """CREATE TABLE IF NOT EXISTS predictions (
        id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL, client_id VARCHAR(200) NOT NULL,
        ts VARCHAR NOT NULL, features TEXT NOT NULL, prediction TEXT NOT NULL,
        confidence FLOAT, model_version VARCHAR(100), UNIQUE (model_id, client_id))"""
    ],
    # the least storage there is: the body as one blob, and the ids in an index
    # (idempotency needs them); a layout no query could use, kept only as a bound
    "blob": [
        "CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, body BLOB NOT NULL)",
        """CREATE TABLE IF NOT EXISTS ids (model_id INTEGER, client_id TEXT, batch INTEGER,
        pos INTEGER, PRIMARY KEY (model_id, client_id)) WITHOUT ROWID""",
    ],
}
_FLOOR_INSERT = (
    "INSERT INTO predictions (model_id, client_id, ts, features, prediction, confidence,"
    " model_version) VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_id, client_id) DO NOTHING"
)


def floor_app() -> FastAPI:
    """The floor: parse, then store every record durably and idempotently; nothing else.

    SQLite as driftdesk opens it (WAL, ``synchronous=FULL``, one writer at a time),
    one connection per thread, the rows written in the thread pool as driftdesk does.
    ``$DRIFTDESK_BENCH_FLOOR_LAYOUT`` is ``rows`` (a row per record) or ``blob``.
    """
    path = os.environ[FLOOR_DB]
    layout = os.environ.get(FLOOR_LAYOUT, "rows")
    local = threading.local()

    def connection() -> sqlite3.Connection:
        con = getattr(local, "con", None)
        if con is None:
            con = local.con = sqlite3.connect(path, isolation_level=None, timeout=60)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            for table in _FLOOR_TABLES[layout]:
                con.execute(table)
        return con

    def write_rows(con: sqlite3.Connection, raw: bytes, records: list[dict[str, Any]]) -> None:
        rows = [
            (
                r["id"],
                r["timestamp"],
                orjson.dumps(r["features"]).decode(),
                orjson.dumps(r["prediction"]).decode(),
                r.get("confidence"),
                r.get("model_version"),
            )
            for r in records
        ]
        con.executemany(_FLOOR_INSERT, rows)

    def write_blob(con: sqlite3.Connection, raw: bytes, records: list[dict[str, Any]]) -> None:
        batch = con.execute("INSERT INTO batches (body) VALUES (?)", (raw,)).lastrowid
        con.executemany(
            "INSERT INTO ids VALUES (1, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(r["id"], batch, i) for i, r in enumerate(records)],
        )

    write = write_rows if layout == "rows" else write_blob

    def store(raw: bytes) -> int:
        records = orjson.loads(raw)["predictions"]
        con = connection()
        con.execute("BEGIN IMMEDIATE")
        try:
            write(con, raw, records)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return len(records)

    app = FastAPI()

    @app.post("/ingest", status_code=202)
    async def ingest(request: Request) -> dict[str, int]:
        accepted = await run_in_threadpool(store, await request.body())
        return {"accepted": accepted, "duplicates": 0, "exceptions": 0}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


class BareServer:
    """``bench.ingest:bare_app`` (or another factory here) under uvicorn."""

    def __init__(
        self, workers: int, factory: str = "bare_app", env: dict[str, str] | None = None
    ) -> None:
        self.workers = workers
        self.factory = factory
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> BareServer:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"bench.ingest:{self.factory}",
                "--factory",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--workers",
                str(self.workers),
            ],
            cwd=ROOT,
            env={**os.environ, **self.env, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.factory} did not start")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(30)


# --------------------------------------------------------------------------- traffic
def record_fragments(n: int, seed: int) -> list[bytes]:
    """``n`` records as JSON objects without their id (``{"timestamp": ..., ...}``)."""
    rng = np.random.default_rng(seed)
    cols = synthetic(rng, n)
    # a confident model: about 4% of records fall under the 0.6 threshold
    confidence = np.clip(1.0 - rng.gamma(2.0, 0.08, n), 0.5, 1.0)
    now = time.time()
    fragments = []
    for i in range(n):
        features: dict[str, Any] = {}
        for name, kind in KINDS.items():
            value = cols[name][i]
            if kind == "numerical":
                features[name] = None if np.isnan(value) else round(float(value), 4)
            else:
                features[name] = None if value is None else str(value)
        c = float(confidence[i])
        record = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - (n - i) * 0.01)),
            "features": features,
            "prediction": "yes" if rng.random() < 0.3 else "no",
            "probabilities": None,
            "confidence": round(c, 4),
            "model_version": "2026-11-01",
        }
        fragments.append(orjson.dumps(record))
    return fragments


class Bodies:
    """Batch bodies with fresh ids, built from pre-serialised records (cheap for the client)."""

    def __init__(self, batch: int, seed: int = 1) -> None:
        self.batch = batch
        self.fragments = record_fragments(batch * 5, seed)
        self.counter = itertools.count()
        self.lock = threading.Lock()
        self.run = uuid.uuid4().hex[:8]

    def next(self) -> bytes:
        with self.lock:
            k = next(self.counter)
        start = (k * self.batch) % (len(self.fragments) - self.batch)
        parts = [
            b'{"id":"%s-%d-%d",' % (self.run.encode(), k, j) + frag[1:]
            for j, frag in enumerate(self.fragments[start : start + self.batch])
        ]
        return b'{"predictions":[' + b",".join(parts) + b"]}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its live descendants (uvicorn workers)."""
    ticks = 0
    pending = [pid]
    while pending:
        p = pending.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
            for task in Path(f"/proc/{p}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:  # exited meanwhile
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    records: int = 0
    server_cpu: float = float("nan")  # seconds of server CPU while measuring
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock_share: float | None = None  # of request time, waiting on PostgreSQL locks
    lock_waits: dict[str, float] = field(default_factory=dict)  # seconds by wait_event

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_1000(self) -> float:
        """Server CPU per 1,000 records: what a busy machine does not distort much."""
        return self.server_cpu / self.records * 1e6 if self.records else float("nan")

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


def load(
    name: str,
    url: str | Sequence[str],
    path: str,
    *,
    seconds: float,
    clients: int,
    batch: int,
    headers: Any,
    pid: int | Sequence[int],
    sampler: LockSampler | None = None,
) -> Result:
    """``clients`` threads posting batches for ``seconds``; a short warm-up is not counted.

    With several ``url``s (replicas), client ``i`` posts to ``url[i % len(url)]``;
    the server CPU is that of every process in ``pid``.
    """
    urls = [url] if isinstance(url, str) else list(url)
    pids = [pid] if isinstance(pid, int) else list(pid)
    bodies = Bodies(batch)
    result = Result(name)
    lock = threading.Lock()
    counting = threading.Event()
    stop = threading.Event()

    def client(url: str) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            while not stop.is_set():
                body = bodies.next()
                started = time.perf_counter()
                r = http.post(path, content=body, headers={"content-type": "application/json"})
                elapsed = time.perf_counter() - started
                if r.status_code != 202:
                    with lock:
                        result.errors.append(f"{r.status_code}: {r.text[:200]}")
                    continue
                accepted = int(r.json()["accepted"])
                if counting.is_set() and not stop.is_set():
                    with lock:
                        result.records += accepted
                        result.latencies.append(elapsed)

    threads = [
        threading.Thread(target=client, args=(urls[i % len(urls)],), daemon=True)
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    time.sleep(min(2.0, seconds / 5))  # warm-up: connections, caches, first blocks
    counting.set()
    started, cpu = time.perf_counter(), sum(map(cpu_seconds, pids))
    if sampler is not None:
        sampler.start()
    time.sleep(seconds)
    stop.set()
    if sampler is not None:
        sampler.stop()
    result.seconds = time.perf_counter() - started
    result.server_cpu = sum(map(cpu_seconds, pids)) - cpu
    for t in threads:
        t.join(60)
    return result


class LockSampler:
    """Samples ``pg_stat_activity`` of one database: how long its backends wait on locks.

    Every ``interval`` seconds, each backend of the database waiting with
    ``wait_event_type = 'Lock'`` adds the time since the previous sample to the
    wait of its ``wait_event`` (``transactionid``, ``tuple``, ``advisory``...).
    Divided by the summed latency of the requests, it is the share of request
    time spent waiting on locks.
    """

    def __init__(self, database_url: str, interval: float = 0.005) -> None:
        from sqlalchemy.engine import make_url

        self.conninfo = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self.interval = interval
        self.waits: dict[str, float] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    @property
    def seconds(self) -> float:
        return sum(self.waits.values())

    def _run(self) -> None:
        import psycopg

        query = (
            "SELECT wait_event, count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND wait_event_type = 'Lock' GROUP BY wait_event"
        )
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            last = time.perf_counter()
            while not self._stop.is_set():
                rows = conn.execute(query).fetchall()
                now = time.perf_counter()
                for event, count in rows:
                    self.waits[event] = self.waits.get(event, 0.0) + count * (now - last)
                last = now
                self.samples += 1
                time.sleep(self.interval)


# --------------------------------------------------------------------------- driftdesk
def prepare_model(url: str) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        model = {
            "name": MODEL,
            "task": "classification",
            "features": [{"name": k, "type": t} for k, t in KINDS.items()],
            "labels": LABELS,
            "window": {"kind": "count", "size": 50_000, "step": 10_000},
            "confidence_threshold": 0.6,
        }
        http.post("/v1/models", json=model).raise_for_status()
        reference = [
            {
                "features": r["features"],
                "prediction": r["prediction"],
                "confidence": r["confidence"],
            }
            for r in map(orjson.loads, record_fragments(20_000, seed=99))
        ]
        http.post(f"/v1/models/{MODEL}/reference", json={"records": reference}).raise_for_status()


def run_driftdesk(name: str, database_url: str, args: argparse.Namespace) -> Result:
    env = {"DRIFTDESK_DATABASE_URL": database_url, "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": ADMIN}
    serve_args = ["--workers", str(args.workers)]
    if args.no_background:
        serve_args.append("--no-background")
    with DriftdeskServer(env=env, args=serve_args, start_timeout=START_TIMEOUT) as server:
        prepare_model(server.url)
        result = load(
            name,
            server.url,
            PATH,
            seconds=args.seconds,
            clients=args.clients,
            batch=args.batch,
            headers={"Authorization": f"Bearer {ADMIN}"},
            pid=server.pid,
        )
        stored = httpx.get(
            f"{server.url}/v1/models/{MODEL}",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        ).json()["records"]
        print(f"  {name}: {stored:,} records stored in all", file=sys.stderr)
    return result


def run_replicas(database_url: str, args: argparse.Namespace) -> Result:
    """2 ``serve --no-background`` replicas and 1 ``driftdesk worker`` on one PostgreSQL
    database, one model, the clients spread over the replicas; lock waits sampled."""
    env = {"DRIFTDESK_DATABASE_URL": database_url, "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": ADMIN}
    name = f"driftdesk, PostgreSQL, {args.replicas} replicas"
    serve_args = ["--workers", "1", "--no-background"]
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(
            DriftdeskServer(env=env, args=serve_args, start_timeout=START_TIMEOUT)
        )
        prepare_model(first.url)
        servers = [first] + [
            stack.enter_context(
                DriftdeskServer(env=env, args=serve_args, start_timeout=START_TIMEOUT)
            )
            for _ in range(args.replicas - 1)
        ]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTDESK_")}
        worker = subprocess.Popen(
            [*driftdesk_command(), "worker"],
            env={**inherited, "DRIFTDESK_LOG_LEVEL": "WARNING", **env},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        stack.callback(worker.wait, 30)
        stack.callback(worker.terminate)
        sampler = LockSampler(database_url)
        result = load(
            name,
            [s.url for s in servers],
            PATH,
            seconds=args.seconds,
            clients=args.clients,
            batch=args.batch,
            headers={"Authorization": f"Bearer {ADMIN}"},
            pid=[*(s.pid for s in servers), worker.pid],
            sampler=sampler,
        )
        requests = sum(result.latencies)
        result.lock_waits = dict(sampler.waits)
        result.lock_share = sampler.seconds / requests if requests else float("nan")
        stored = httpx.get(
            f"{first.url}/v1/models/{MODEL}",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        ).json()["records"]
        print(f"  {name}: {stored:,} records stored in all", file=sys.stderr)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per server")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--workers", type=int, default=2, help="uvicorn worker processes, for both servers"
    )
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL")
    parser.add_argument("--no-background", action="store_true", help="serve without the loops")
    parser.add_argument(
        "--replicas",
        type=int,
        default=2,
        help="with --postgres, a further run: this many `serve --no-background` replicas"
        " and one `driftdesk worker` on one database (0: skip it)",
    )
    parser.add_argument("--skip-bare", action="store_true", help="do not run the ceiling")
    parser.add_argument("--skip-floor", action="store_true", help="do not run the floors")
    parser.add_argument("--skip-sqlite", action="store_true", help="do not run driftdesk on SQLite")
    parser.add_argument(
        "--skip-single", action="store_true", help="with --postgres: only the replicas run"
    )
    args = parser.parse_args()

    def measure(name: str, factory: str, env: dict[str, str] | None = None) -> Result:
        """Load one of this file's apps (the ceiling or a floor) under uvicorn."""
        with BareServer(args.workers, factory, env) as server:
            return load(
                name,
                server.url,
                "/ingest",
                seconds=args.seconds,
                clients=args.clients,
                batch=args.batch,
                headers={},
                pid=server.pid,
            )

    results: list[Result] = []
    bare = None if args.skip_bare else measure("bare endpoint (parse only)", "bare_app")
    if bare is not None:
        results.append(bare)
    floors: list[Result] = []
    layouts = [("rows", "floor (parse + store rows)"), ("blob", "floor (parse + body as blob)")]
    for layout, label in [] if args.skip_floor else layouts:
        with tempfile.TemporaryDirectory() as tmp:
            env = {FLOOR_DB: f"{tmp}/floor.db", FLOOR_LAYOUT: layout}
            floors.append(measure(label, "floor_app", env))
    results += floors
    floor = floors[0] if floors else None
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run_driftdesk(SQLITE, f"sqlite:///{tmp}/bench.db", args))
    if args.postgres and not args.skip_single:
        with scratch_postgres(args.postgres) as url:
            results.append(run_driftdesk(POSTGRES, url, args))
    if args.postgres and args.replicas:
        with scratch_postgres(args.postgres) as url:
            results.append(run_replicas(url, args))

    print(
        f"\n{args.clients} clients, batches of {args.batch:,} records of 25 features, "
        f"{args.seconds:.0f} s each, {args.workers} uvicorn worker(s) per server\n"
    )
    print(
        f"{'':36} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'batches':>8} {'errors':>7}"
        f" {'server CPU ms/1k':>17}"
    )
    for r in results:
        print(
            f"{r.name:36} {r.rate:>10,.0f} {r.percentile(50):>8.1f} {r.percentile(99):>8.1f} "
            f"{len(r.latencies):>8} {len(r.errors):>7} {r.cpu_ms_per_1000:>17.1f}"
        )
    for r in results:
        if r.lock_share is not None:
            waits = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(r.lock_waits.items())) or "none"
            print(
                f"\n{r.name}: {r.lock_share:.1%} of request time waiting on locks"
                f" (sampled pg_stat_activity; {waits})"
            )
    load1, load5, _ = os.getloadavg()
    print(
        f"\nload average during the run: {load1:.1f} (1 min), {load5:.1f} (5 min) on {os.cpu_count()} CPUs"
    )
    for r in results:
        for error in r.errors[:3]:
            print(f"  {r.name}: {error}")
    ok = True
    print()
    if bare is not None and floors and bare.rate:
        for f in floors:
            print(f"  {f.name}: {f.rate / bare.rate:.0%} of the bare endpoint")
        print("  (parsing plus storing each record durably bounds any ingest here)")
    sqlite = next((r for r in results if r.name == SQLITE), None)
    for r in results:
        if r is bare or any(r is f for f in floors):
            continue
        checks = [
            (f"{r.rate:,.0f} records/s ≥ 20,000", r.rate >= 20_000),
            (f"p99 {r.percentile(99):.0f} ms < 250 ms", r.percentile(99) < 250),
            (f"{len(r.errors)} failed batches", not r.errors),
        ]
        if bare is not None and bare.rate:
            print(f"  {r.name}: {r.rate / bare.rate:.0%} of the bare endpoint")
        if floor is not None and floor.rate and r is sqlite:
            cpu = r.cpu_ms_per_1000 / floor.cpu_ms_per_1000
            share = r.rate / floor.rate
            checks.append((f"{cpu:.1f}× the rows floor's CPU per record ≤ 2×", cpu <= 2))
            checks.append((f"{share:.0%} of the rows floor's rate ≥ 50%", share >= 0.5))
        elif floor is not None and floor.rate:
            print(f"  {r.name}: {r.rate / floor.rate:.0%} of the rows floor")
        if r.name == POSTGRES and sqlite is not None:
            checks.append(
                (f"{r.rate / sqlite.rate:.0%} of SQLite's rate ≥ 100%", r.rate >= sqlite.rate)
            )
        if r.lock_share is not None:
            checks.append(
                (f"{r.lock_share:.1%} of request time waiting on locks < 5%", r.lock_share < 0.05)
            )
        for text, passed in checks:
            ok &= passed
            print(f"  {r.name}: {'ok  ' if passed else 'MISS'} {text}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
