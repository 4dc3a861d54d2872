"""How long reading a window's performance takes, by window size, through the HTTP API.

A binary classifier's traffic is stored as ingest stores it: per batch of 1,000
records, one part with the stratum populations and one with the CBPE sums in the
batch's block; ground truth for 10% of the records adds realized parts, and
reviewers' labels (every flagged record and a 2% audit) audited parts. Windows of
10k, 100k and 1M rows (100 blocks each), then ``GET /v1/models/{name}/performance``
for the newest window (median of repeated reads), before and after the evaluator
compacts finished blocks into one part per kind.

    python bench/performance_window.py            # 10k, 100k, 1M
    python bench/performance_window.py --quick    # 10k, 100k
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from app.db import Database, make_engine
from app.main import create_app
from app.ops import migrations
from app.performance import service
from app.performance.blocks import AUDITED, ESTIMATED, POPULATION, REALIZED
from app.performance.fitting import label_spec
from app.performance.tables import PerformancePart
from app.settings import Settings
from monitors.performance import (
    audit_classification,
    audit_population,
    cbpe_sums,
    fit_classification,
    labelled_classification,
)
from storage.tables import MonitoredModel

ADMIN = "dd_bench_performance_0123456789abcdef"
CLASSES = ("stay", "churn")
BATCH = 1_000
READS = 15


def simulate(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rng.normal(0, 1, n)
    p = 1 / (1 + np.exp(-2 * x))
    predicted = np.where(p >= 0.5, "churn", "stay")
    truth = np.where(rng.random(n) < p, "churn", "stay")
    return predicted, np.maximum(p, 1 - p), truth


def fill(db: Database, model_id: int, rows: int, step: int, rng: np.random.Generator) -> int:
    """Store ``rows`` records' parts as ingest and labels would; returns the parts written."""
    pred, conf, truth = simulate(20_000, rng)
    spec = fit_classification(CLASSES, labels=truth, predicted=pred, confidence=conf)
    realized_spec = label_spec(CLASSES)
    now = dt.datetime.now(dt.UTC)
    parts: list[dict[str, Any]] = []
    for start in range(0, rows, BATCH):
        block = start // step
        pred, conf, truth = simulate(BATCH, rng)
        flagged = conf < 0.6
        strata = np.where(flagged, "flagged", "unflagged")
        audit = ~flagged & (rng.random(BATCH) < 0.02)
        labelled = flagged | audit
        known = rng.random(BATCH) < 0.1

        def part(
            kind: str, sums: Any, reference_id: int | None = None, block: int = block
        ) -> dict[str, Any]:
            return {
                "model_id": model_id,
                "block": block,
                "model_version": "",
                "kind": kind,
                "reference_id": reference_id,
                "sums": sums.to_json(),
                "first_ts": now,
                "last_ts": now,
                "created_at": now,
            }

        parts.append(part(POPULATION, audit_population(strata)))
        parts.append(part(ESTIMATED, cbpe_sums(spec, pred, confidence=conf), 1))
        parts.append(
            part(
                REALIZED,
                labelled_classification(
                    realized_spec, truth[known], pred[known], confidence=conf[known]
                ),
            )
        )
        parts.append(
            part(
                AUDITED,
                audit_classification(
                    strata[labelled],
                    np.where(flagged[labelled], 1.0, 0.02),
                    truth[labelled],
                    pred[labelled],
                ),
            )
        )
    with db.session() as session:
        for i in range(0, len(parts), 2_000):
            session.execute(insert(PerformancePart), parts[i : i + 2_000])
    return len(parts)


def read_ms(client: TestClient, path: str = "/v1/models/bench/performance") -> tuple[float, float]:
    """The first read (its parts not decoded yet: fetched and decoded) and the median of
    the next ``READS`` (decoded parts from the cache, as a dashboard's polling sees)."""
    times = []
    for _ in range(READS + 1):
        t = time.perf_counter()
        r = client.get(path, params={"limit": 1})
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    return times[0], median(times[1:])


def run(
    rows: int, folder: Path
) -> tuple[tuple[float, float], tuple[float, float], int, int, float]:
    url = f"sqlite:///{folder / f'perf-{rows}.db'}"
    migrations.upgrade(url)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, bootstrap_admin_key=ADMIN, log_format="text"
    )
    db = Database(make_engine(url))
    step = rows // 100
    app = create_app(settings, database=db)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        body = {
            "name": "bench",
            "task": "classification",
            "features": [{"name": "x", "type": "numerical"}],
            "labels": list(CLASSES),
            "window": {"kind": "count", "size": rows, "step": step},
        }
        assert client.post("/v1/models", json=body).status_code == 201
        with db.session() as session:
            model = session.scalar(select(MonitoredModel).where(MonitoredModel.name == "bench"))
            assert model is not None
            model.record_count = rows + step  # the window's blocks are finished
            model_id = model.id
        written = fill(db, model_id, rows, step, np.random.default_rng(rows))
        raw = read_ms(client)
        with db.session() as session:
            model = session.get(MonitoredModel, model_id)
            assert model is not None
            while service.compact(session, model=model, before_block=rows // step + 1):
                pass
        with db.session(readonly=True) as session:
            left = int(session.scalar(select(func.count()).select_from(PerformancePart)) or 0)
        compacted = read_ms(client)
        bare = read_ms(client, "/v1/models/bench")[1]
    db.dispose()
    return raw, compacted, written, left, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows only")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    print(
        f"{'window rows':>12} {'parts':>7} {'first ms':>9} {'read ms':>8} {'compacted parts':>16}"
        f" {'first ms':>9} {'read ms':>8} {'GET model ms':>13}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            raw, compacted, written, left, bare = run(rows, Path(tmp))
            print(
                f"{rows:>12,} {written:>7,} {raw[0]:>9.1f} {raw[1]:>8.1f} {left:>16,}"
                f" {compacted[0]:>9.1f} {compacted[1]:>8.1f} {bare:>13.1f}"
            )
    print(
        f"(GET /v1/models/{{name}}/performance?limit=1 through the ASGI app on SQLite: the first "
        f"read, its parts fetched and decoded, then the median of {READS} more, decoded parts "
        "from the cache; a window of 100 blocks; parts per 1,000-record batch: populations, CBPE, "
        "realized, audited; GET model: GET /v1/models/{name} in the same run, the cost of any "
        "request on this machine at this moment)"
    )


if __name__ == "__main__":
    main()
