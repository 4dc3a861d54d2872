"""How long one drift evaluation takes, by window size: driftdesk against Evidently.

For windows of 10k, 100k and 1M rows × 25 features (20 numerical, 5 categorical),
driftdesk's time is the service's own evaluate path — read the window's block
sketches from the database, sum them, run every detector with calibration, store
the evaluation — with the sketches already built (as ingest builds them).
Evidently's time is its ``DataDriftPreset`` report on the same rows (reference
and window as DataFrames), computed and rendered to HTML. Same data, same run.

    python bench/drift_speed.py            # 10k, 100k, 1M
    python bench/drift_speed.py --quick    # 10k, 100k
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from app.catalog.service import create_model
from app.db import Database, make_engine
from app.drift import service
from app.ingest.columns import Columns
from app.ingest.sketches import get_spec
from app.ingest.store import block_parts
from app.ops import migrations
from app.reference.service import set_reference
from app.schemas import ModelCreate
from app.settings import Settings
from bench._data import CATEGORICAL, KINDS, NUMERICAL, Shift, synthetic
from monitors.report import build_report
from monitors.window import WindowSpec
from storage.base import utcnow
from storage.tables import BlockCounts, MonitoredModel

REFERENCE_ROWS = 20_000
BLOCKS = 10


def columns_of(frame: dict[str, np.ndarray]) -> Columns:
    values = {
        k: (v.astype(np.float64) if KINDS[k] == "numerical" else v.astype(object))
        for k, v in frame.items()
    }
    return Columns(len(next(iter(values.values()))), values)


def setup(db: Database, settings: Settings, rows: int, rng: np.random.Generator) -> str:
    """A model whose window holds ``rows`` rows, as block sketches built at ingest."""
    name = f"speed-{rows}"
    step = rows // BLOCKS
    body = ModelCreate(
        name=name,
        task="regression",
        features=[{"name": k, "type": t} for k, t in KINDS.items()],  # type: ignore[misc]
        window={"kind": "count", "size": rows, "step": step},  # type: ignore[arg-type]
    )
    with db.session() as session:
        model = create_model(session, body=body)
        set_reference(
            session,
            model=model,
            columns=columns_of(synthetic(rng, REFERENCE_ROWS, Shift())),
            source="json",
            created_by=None,
            max_rows=10**7,
            sample_rows=5_000,
        )
        spec_window = WindowSpec("count", rows, step)
        now = utcnow()
        for b in range(BLOCKS):  # one block at a time: 1M rows never sit in memory twice
            block = columns_of(synthetic(rng, step, Shift(mean_sigma=0.05)))
            seqs = np.arange(b * step, (b + 1) * step, dtype=np.int64)
            assert model.reference_id is not None
            parts = block_parts(
                spec=get_spec(session, model.reference_id),
                window=spec_window,
                columns=block,
                seqs=seqs,
                stamps=[now] * step,
                model_id=model.id,
                reference_id=model.reference_id,
                now=now,
            )
            session.execute(insert(BlockCounts), parts)
        model.record_count = rows
    return name


def time_driftdesk(
    db: Database, settings: Settings, name: str, repeats: int = 5
) -> tuple[float, float]:
    """(first evaluation incl. calibration, median of the next ones), seconds."""
    times = []
    for _ in range(repeats + 1):
        with db.session() as session:
            model = session.scalars(select(MonitoredModel).where(MonitoredModel.name == name)).one()
            started = time.perf_counter()
            service.evaluate_now(session, model=model, settings=settings, now=utcnow())
            times.append(time.perf_counter() - started)
    return times[0], median(times[1:])


def time_evidently(rows: int, rng: np.random.Generator) -> float:
    reference = pd.DataFrame(synthetic(rng, REFERENCE_ROWS, Shift()))
    current = pd.DataFrame(synthetic(rng, rows, Shift(mean_sigma=0.05)))
    started = time.perf_counter()
    build_report(reference, current, numerical=NUMERICAL, categorical=CATEGORICAL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k only")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/speed.db"
        migrations.upgrade(url)
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        db = Database(make_engine(url))
        print("warming Evidently up (its import takes seconds)...", flush=True)
        time_evidently(1_000, rng)
        print(
            f"\n{'window rows':>12} | {'driftdesk first':>15} | {'driftdesk':>10} | {'Evidently':>10} | {'speed-up':>8}"
        )
        print("-" * 68)
        for rows in sizes:
            name = setup(db, settings, rows, rng)
            first, steady = time_driftdesk(db, settings, name)
            evidently = time_evidently(rows, rng)
            print(
                f"{rows:>12,} | {first * 1000:>12.1f} ms | {steady * 1000:>7.1f} ms | "
                f"{evidently:>8.2f} s | {evidently / steady:>7.0f}×",
                flush=True,
            )
        db.dispose()
    print(
        "\ndriftdesk first = the first evaluation at this window size, including the one-off"
        "\ncalibration (stored, then reused); driftdesk = median of the next 5."
        f"\nReference: {REFERENCE_ROWS:,} rows; window as {BLOCKS} block sketches; 25 features."
        f"\nRun on {dt.date.today()}."
    )


if __name__ == "__main__":
    main()
