"""The workforce forecast against a simulated review queue, through the real service over HTTP.

The service runs under uvicorn on 127.0.0.1 (SQLite in a temporary folder, no
background loops). Its clock is simulated: the bench replaces the service's
``utcnow`` so that minutes pass in microseconds, and runs the alert-rules step
itself every five simulated minutes. Everything else is the real code: tickets
are opened by ``POST /v1/models/churn/predictions`` (low-confidence records),
reviewers ``POST /v1/tickets/claim`` and ``/resolve``, the forecast is read
from ``GET /v1/workforce`` and the alert from ``GET /v1/alerts``.

The scenario: low-confidence tickets arrive at 22 per hour (Poisson), ×3 from
hour 5 (66 per hour, a drift incident's surge); reviewers' handle times are
log-normal (mean 5 minutes, σ 0.5). The low-confidence SLA is compressed from
72 h to 4 h (the issue's example) so that a breach happens within a day of
simulated time; the forecast and the alert read the same table.

Three runs from the same seed:

- **A** two reviewers throughout: the forecast read at 5 h 30 and at 6 h
  (half an hour and an hour into the surge) against the simulated first
  breach; the lead time of ``queue.staffing`` before that breach. With
  ``--breach-seeds N`` run A is repeated for N seeds (one seed says little:
  half an hour of the surge is about 33 tickets, a rate known to ±17%);
- **B** two reviewers until 9 h, then what ``GET /v1/workforce`` recommends
  at 9 h (``reviewers_needed_now``): SLA attainment over 30 h (target ≥ 95%);
- **C** as B with one reviewer fewer: attainment should fall below 95%.

    python bench/workforce.py [--seed 1] [--breach-seeds 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

START = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)  # a Monday
ADMIN = "dd_bench_admin_secret_0123456789"
BASE_RATE = 22.0
STEP_AT = 5.0
STEP = 3.0
HANDLE_MEAN_MIN = 5.0
HANDLE_SIGMA = 0.5
SLA_HOURS = 4.0


class SimClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def hours(self) -> float:
        return (self.now - START).total_seconds() / 3600


CLOCK = SimClock()


def patch_service() -> None:
    """Give the service the simulated clock and the compressed low-confidence SLA."""
    import storage.base
    from exceptions_queue import states

    original = storage.base.utcnow
    for module in list(sys.modules.values()):
        if module is not None and getattr(module, "utcnow", None) is original:
            module.utcnow = CLOCK  # type: ignore[attr-defined]
    states.SLA_BY_PRIORITY = tuple(
        (floor, dt.timedelta(hours=SLA_HOURS) if floor == 40 else span)
        for floor, span in states.SLA_BY_PRIORITY
    )


def start_server(folder: Path) -> tuple[str, Any, Any]:
    import uvicorn

    from app.db import Database, make_engine
    from app.main import create_app
    from app.ops import migrations
    from app.settings import Settings

    url = f"sqlite:///{folder / 'bench.db'}"
    migrations.upgrade(url)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url,
        bootstrap_admin_key=ADMIN,
        sqlite_synchronous="OFF",
        log_level="warning",
    )
    db = Database(make_engine(url, sqlite_synchronous="OFF"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, database=db), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", (server, thread, sock), (db, settings)


@dataclass(order=True)
class Event:
    at: float
    order: int
    kind: str = field(compare=False)
    reviewer: int = field(compare=False, default=-1)
    ticket: int = field(compare=False, default=-1)


@dataclass
class Run:
    claims: dict[int, tuple[dt.datetime, dt.datetime]] = field(
        default_factory=dict
    )  # id -> (claimed, due)
    # every forecast read: its time -> the first low-confidence breach it said (hours)
    predictions: dict[float, float | None] = field(default_factory=dict)
    # every forecast read: its time -> what the service measured then
    measured_at: dict[float, str] = field(default_factory=dict)
    recommended: int | None = None
    alert_fired_h: float | None = None
    attainment: float | None = None
    first_breach_h: float | None = None
    tickets: int = 0


def simulate(
    label: str, *, hours: float, staffing: Any, seed: int, predict_at: tuple[float, ...]
) -> Run:
    """One run on a fresh service; ``staffing(hour, run)`` says how many reviewers work."""
    folder = Path(tempfile.mkdtemp(prefix=f"dd-bench-wf-{label}-"))
    CLOCK.now = START
    url, (server, thread, sock), (db, settings) = start_server(folder)
    from app.alerting.rules import run_alert_rules

    rng = np.random.default_rng(seed)
    run = Run()
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)
    client.post(
        "/v1/models",
        json={
            "name": "churn",
            "task": "classification",
            "features": [{"name": "x", "type": "numerical"}],
            "labels": ["stay", "churn"],
            "window": {"kind": "count", "size": 100_000, "step": 100_000},
            "confidence_threshold": 0.6,
        },
    ).raise_for_status()
    keys = []
    for i in range(12):
        r = client.post("/v1/keys", json={"name": f"reviewer-{i}", "scopes": ["review"]})
        r.raise_for_status()
        keys.append({"Authorization": f"Bearer {r.json()['secret']}"})
    events: list[Event] = []
    order = 0

    def push(at: float, kind: str, **kw: int) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, Event(at, order, kind, **kw))

    minute = 1 / 60
    for m in range(int(hours * 60)):
        push(m * minute, "arrivals")
        if m % 5 == 0:
            push(m * minute + minute / 2, "rules")
    for at in predict_at:
        push(at, "predict")
    busy: dict[int, int] = {}  # reviewer -> ticket
    seq = 0

    def try_claim(reviewer: int, at: float) -> None:
        if reviewer >= staffing(at, run) or reviewer in busy:
            return
        r = client.post("/v1/tickets/claim", json={"lease_seconds": 7200}, headers=keys[reviewer])
        if r.status_code == 204:
            return
        r.raise_for_status()
        t = r.json()
        busy[reviewer] = t["id"]
        run.claims[t["id"]] = (CLOCK.now, dt.datetime.fromisoformat(t["due_at"]))
        handle = rng.lognormal(np.log(HANDLE_MEAN_MIN) - HANDLE_SIGMA**2 / 2, HANDLE_SIGMA) / 60
        push(at + handle, "finish", reviewer=reviewer, ticket=t["id"])

    while events:
        e = heapq.heappop(events)
        if e.at >= hours:
            break
        CLOCK.now = START + dt.timedelta(hours=e.at)
        if e.kind == "arrivals":
            rate = BASE_RATE * (STEP if e.at >= STEP_AT else 1.0)
            n = int(rng.poisson(rate * minute))
            if n:
                records = [
                    {
                        "id": f"p{seq + i}",
                        "features": {"x": 1.0},
                        "prediction": "stay",
                        "confidence": 0.4,
                    }
                    for i in range(n)
                ]
                seq += n
                client.post(
                    "/v1/models/churn/predictions", json={"predictions": records}
                ).raise_for_status()
                run.tickets += n
            for reviewer in range(len(keys)):
                try_claim(reviewer, e.at)
        elif e.kind == "finish":
            client.post(
                f"/v1/tickets/{e.ticket}/resolve", json={"label": "stay"}, headers=keys[e.reviewer]
            ).raise_for_status()
            del busy[e.reviewer]
            try_claim(e.reviewer, e.at)
        elif e.kind == "rules":
            run_alert_rules(db, settings, now=CLOCK.now)
            if run.alert_fired_h is None:
                firing = client.get("/v1/alerts", params={"status": "firing"}).json()["items"]
                if any(a["rule"] == "queue.staffing" for a in firing):
                    run.alert_fired_h = e.at
        elif e.kind == "predict":
            w = client.get("/v1/workforce").json()
            f = w["forecast"]
            run.recommended = f["reviewers_needed_now"]
            run.measured_at[e.at] = (
                f"{w['arrivals_per_hour']:.0f}/h arriving, {f['service_rate_per_hour']:.1f}/h "
                f"per reviewer, {f['reviewers']} reviewers, {w['waiting']} waiting"
            )
            lc = [b for b in f["breaches"] if b["kind"] == "low_confidence"]
            run.predictions[e.at] = (
                e.at + lc[0]["in_minutes"] / 60 if lc and lc[0]["in_minutes"] is not None else None
            )
            for reviewer in range(len(keys)):
                try_claim(reviewer, e.at)
    end = START + dt.timedelta(hours=hours)
    CLOCK.now = end
    # SLA attainment over the tickets due before the end: claimed by their due time
    waiting = []
    cursor = None
    while True:
        params: dict[str, Any] = {"status": "open", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/tickets", params=params).json()
        waiting += [dt.datetime.fromisoformat(t["due_at"]) for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    due = [(c, d) for c, d in run.claims.values() if d <= end] + [
        (None, d) for d in waiting if d <= end
    ]
    met = sum(1 for c, d in due if c is not None and c <= d)
    run.attainment = met / len(due) if due else None
    late = [d for c, d in due if c is None or c > d]
    run.first_breach_h = (min(late) - START).total_seconds() / 3600 if late else None
    client.close()
    server.should_exit = True
    thread.join(10)
    sock.close()
    db.dispose()
    return run


READS = (5.5, 6.0)  # the forecast is read half an hour and an hour into the surge


def breach_error(run: Run, at: float) -> float | None:
    """The forecast read at ``at``: its time to breach against the simulated one, relative
    (None when either saw no breach)."""
    predicted = run.predictions.get(at)
    if predicted is None or run.first_breach_h is None:
        return None
    return (predicted - at) / (run.first_breach_h - at) - 1


def breach_lines(a: Run, seed: int) -> list[str]:
    """Run A's forecasts, each against the simulated first breach (time to breach from the read)."""
    if a.first_breach_h is None:
        return [f"A seed {seed}: no simulated breach within the run"]
    lines = []
    for at, predicted in sorted(a.predictions.items()):
        relative = breach_error(a, at)
        if predicted is None or relative is None:
            lines.append(f"A seed {seed}, read at {at:.1f} h: the forecast saw no breach")
            continue
        ahead_pred, ahead_sim = predicted - at, a.first_breach_h - at
        error = 100 * relative
        lines.append(
            f"A seed {seed}, read at {at:.1f} h: first breach at {predicted:.2f} h; simulated "
            f"{a.first_breach_h:.2f} h (time to breach {ahead_pred:.2f} h vs {ahead_sim:.2f} h: "
            f"{error:+.0f}%, {'within' if abs(error) <= 20 else 'OUTSIDE'} ±20%; "
            f"it measured {a.measured_at[at]})"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--breach-seeds",
        type=int,
        default=1,
        help="run A (the breach forecast) for this many seeds from --seed; B and C use --seed",
    )
    args = parser.parse_args()
    patch_service()
    t0 = time.perf_counter()
    seeds = range(args.seed, args.seed + args.breach_seeds)
    runs = {
        s: simulate("A", hours=13.0, staffing=lambda h, r: 2, seed=s, predict_at=READS)
        for s in seeds
    }
    a = runs[args.seed]

    def later(delta: int) -> Any:
        return lambda h, r: 2 if h < 9.0 or r.recommended is None else max(1, r.recommended + delta)

    b = simulate("B", hours=30.0, staffing=later(0), seed=args.seed, predict_at=(9.0,))
    c = simulate("C", hours=30.0, staffing=later(-1), seed=args.seed, predict_at=(9.0,))
    elapsed = time.perf_counter() - t0
    print(
        f"scenario: {BASE_RATE:g}/h low-confidence tickets, x{STEP:g} at hour {STEP_AT:g}; "
        f"log-normal handle times (mean {HANDLE_MEAN_MIN:g} min, sigma {HANDLE_SIGMA}); "
        f"SLA {SLA_HOURS:g} h; seed {args.seed}"
    )
    for s, run in runs.items():
        print("\n".join(breach_lines(run, s)))
    for at in READS:
        errors = [e for r in runs.values() if (e := breach_error(r, at)) is not None]
        if errors:
            within = sum(abs(e) <= 0.2 for e in errors)
            print(
                f"A read at {at:.1f} h: within ±20% on {within} of {len(runs)} seeds; mean error "
                f"{100 * float(np.mean(errors)):+.0f}%, mean |error| "
                f"{100 * float(np.mean(np.abs(errors))):.0f}%"
            )
    for s, run in runs.items():
        if run.alert_fired_h is not None and run.first_breach_h is not None:
            print(
                f"A seed {s}: queue.staffing fired at {run.alert_fired_h:.2f} h, "
                f"{60 * (run.first_breach_h - run.alert_fired_h):.0f} min before the first "
                f"breach (lead time setting 60 min)"
            )
        else:
            print(
                f"A seed {s}: queue.staffing fired at {run.alert_fired_h}, first breach "
                f"{run.first_breach_h}"
            )
    print(
        f"B (2 reviewers, then the recommended {b.recommended} from 9 h): SLA attainment "
        f"{100 * (b.attainment or 0):.1f}% of tickets due by 30 h (target >= 95%)"
    )
    print(
        f"C (one fewer: {None if c.recommended is None else c.recommended - 1} from 9 h): SLA "
        f"attainment {100 * (c.attainment or 0):.1f}% (should fall below 95%)"
    )
    print(f"tickets: A {a.tickets}, B {b.tickets}, C {c.tickets}; wall time {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
