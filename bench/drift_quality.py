"""Drift quality: false alarms with no drift, detection rates with known shifts.

Each window is an independent draw of ``rows`` rows; driftdesk judges it from
counts (``SketchSpec.count`` then ``evaluate`` with the default
``DriftConfig()``: KS / chi-square with BH at alpha 0.01, calibrated effect
floors), exactly as the service does. Evidently's ``DataDriftPreset`` judges
the first few windows of each cell on the raw rows, against a 10k-row sample
of the same reference (it is slow); its dataset-level decision is "drift share
>= 0.5" (the preset default), and "any column" is whether it flags at least
one column.

Data: a 25-feature synthetic table (20 numerical, 5 categorical; see
``bench/_data.py``) and scikit-learn's bundled breast cancer set, resampled at
the natural class mix (reference, no drift) or at 45% malignant (a
subpopulation shift).

Usage: ``python bench/drift_quality.py [--quick] [--seed N]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import CATEGORICAL, KINDS, NUMERICAL, BreastCancer, Shift, synthetic

from monitors.drift import DriftConfig, calibrate, evaluate
from monitors.sketch import SketchSpec

SIZES = (1_000, 10_000, 100_000)
EVIDENTLY_REFERENCE_ROWS = 10_000
SUBPOPULATION = 0.45

Generator = Callable[[np.random.Generator, int], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Scenario:
    dataset: str
    label: str
    drift: bool
    draw: Generator
    evidently_at_100k: bool = False  # Evidently takes ~10 s per 100k window: only a few


@dataclass
class Cell:
    windows: int = 0
    flagged: int = 0
    features_flagged: int = 0
    seconds: float = 0.0
    ev_windows: int = 0
    ev_dataset: int = 0
    ev_any: int = 0
    ev_seconds: float = 0.0


def scenarios(cancer: BreastCancer) -> list[Scenario]:
    def shifted(shift: Shift) -> Generator:
        return lambda rng, n: synthetic(rng, n, shift)

    out = [Scenario("synthetic", "no drift", False, shifted(Shift()), evidently_at_100k=True)]
    for s in (0.1, 0.2, 0.3, 0.5):
        out.append(Scenario("synthetic", f"mean +{s} sd, 1 num", True, shifted(Shift(s))))
    out += [
        Scenario(
            "synthetic",
            "mean +0.2 sd, all 20 num",
            True,
            shifted(Shift(0.2, n_numerical=20)),
            evidently_at_100k=True,
        ),
        Scenario("synthetic", "variance x1.5, 1 num", True, shifted(Shift(scale=1.5))),
        Scenario("synthetic", "re-weighting 30%, 1 cat", True, shifted(Shift(reweight=0.3))),
        Scenario("synthetic", "new category 5%, 1 cat", True, shifted(Shift(new_category=0.05))),
        Scenario(
            "breast_cancer",
            "no drift",
            False,
            lambda rng, n: cancer.sample(rng, n),
            evidently_at_100k=True,
        ),
        Scenario(
            "breast_cancer",
            f"malignant {cancer.natural_share:.0%} -> {SUBPOPULATION:.0%}",
            True,
            lambda rng, n: cancer.sample(rng, n, malignant=SUBPOPULATION),
        ),
    ]
    return out


def evidently_decision(
    reference: pd.DataFrame, current: pd.DataFrame, numerical: list[str], categorical: list[str]
) -> tuple[bool, bool]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    with np.errstate(all="ignore"):
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
    share = count = None
    for metric in snapshot.dict()["metrics"]:
        if metric["metric_name"].startswith("DriftedColumnsCount"):
            share, count = metric["value"]["share"], metric["value"]["count"]
    if share is None or count is None:
        raise RuntimeError("Evidently's report has no DriftedColumnsCount metric")
    return share >= 0.5, count >= 1


def upper_95(k: int, n: int) -> float:
    """Clopper–Pearson one-sided 95% upper bound on a rate seen k times in n."""
    return 1.0 if k >= n else float(stats.beta.ppf(0.95, k + 1, n - k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer windows (about 2-3 minutes instead of 5-6)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # Evidently's import and runs are noisy

    if args.quick:
        null_windows = {1_000: 60, 10_000: 30, 100_000: 5}
        shift_windows = {1_000: 20, 10_000: 10, 100_000: 2}
        ev_windows = {1_000: 1, 10_000: 1, 100_000: 0}
    else:
        null_windows = {1_000: 300, 10_000: 300, 100_000: 40}
        shift_windows = {1_000: 50, 10_000: 30, 100_000: 6}
        ev_windows = {1_000: 2, 10_000: 1, 100_000: 1}

    started = time.perf_counter()
    cancer = BreastCancer()
    config = DriftConfig()
    rng = np.random.default_rng(args.seed)
    references = {
        "synthetic": (synthetic(rng, 200_000), KINDS, NUMERICAL, CATEGORICAL),
        "breast_cancer": (cancer.sample(rng, 200_000), cancer.kinds, cancer.names, []),
    }
    fitted = {}
    for name, (columns, kinds, numerical, categorical) in references.items():
        spec = SketchSpec.fit(columns, kinds)  # type: ignore[arg-type]
        frame = pd.DataFrame({k: v[:EVIDENTLY_REFERENCE_ROWS] for k, v in columns.items()})
        fitted[name] = (spec, spec.count(columns), frame, numerical, categorical)

    cells: dict[tuple[str, str, int], Cell] = {}
    for size in SIZES:
        calibrations = {
            name: calibrate(spec, counts, window_rows=size, config=config)
            for name, (spec, counts, *_) in fitted.items()
        }
        for scenario in scenarios(cancer):
            spec, counts, ref_frame, numerical, categorical = fitted[scenario.dataset]
            cell = cells.setdefault((scenario.dataset, scenario.label, size), Cell())
            n = (null_windows if not scenario.drift else shift_windows)[size]
            for w in range(n):
                window = scenario.draw(rng, size)
                tick = time.perf_counter()
                result = evaluate(
                    spec,
                    counts,
                    spec.count(window),
                    config=config,
                    calibration=calibrations[scenario.dataset],
                )
                cell.seconds += time.perf_counter() - tick
                cell.windows += 1
                cell.flagged += result.drifted
                cell.features_flagged += sum(f.drifted for f in result.features)
                wanted = ev_windows[size] if size < 100_000 or scenario.evidently_at_100k else 0
                if w < wanted:
                    tick = time.perf_counter()
                    dataset, any_column = evidently_decision(
                        ref_frame, pd.DataFrame(window), numerical, categorical
                    )
                    cell.ev_seconds += time.perf_counter() - tick
                    cell.ev_windows += 1
                    cell.ev_dataset += dataset
                    cell.ev_any += any_column
            print(f"  .. {scenario.dataset} / {scenario.label} / {size:,} rows", file=sys.stderr)

    print_table(cells, cancer)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


def pct(k: int, n: int) -> str:
    return "-" if n == 0 else f"{100.0 * k / n:5.1f}% ({n})"


def print_table(cells: dict[tuple[str, str, int], Cell], cancer: BreastCancer) -> None:
    print("\nFalse alarms with no drift (share of windows flagged; 95% upper bound)")
    header = (
        f"{'dataset':<14} {'rows':>8}  {'driftdesk':>15} {'≤ (95%)':>8}  "
        f"{'Evidently dataset':>17} {'Evidently any col':>17}"
    )
    print(header)
    print("-" * len(header))
    for (dataset, label, size), c in cells.items():
        if label != "no drift":
            continue
        print(
            f"{dataset:<14} {size:>8,}  {pct(c.flagged, c.windows):>15} "
            f"{upper_95(c.flagged, c.windows):>7.1%}  "
            f"{pct(c.ev_dataset, c.ev_windows):>17} {pct(c.ev_any, c.ev_windows):>17}"
        )
    print("\nDetection with known shifts (share of windows flagged; mean features flagged)")
    header = (
        f"{'scenario':<38} {'rows':>8}  {'driftdesk':>15} {'feat.':>5}  "
        f"{'Evidently dataset':>17} {'Evidently any col':>17}"
    )
    print(header)
    print("-" * len(header))
    for (dataset, label, size), c in cells.items():
        if label == "no drift":
            continue
        name = label if dataset == "synthetic" else f"{dataset}: {label}"
        print(
            f"{name:<38} {size:>8,}  {pct(c.flagged, c.windows):>15} "
            f"{c.features_flagged / max(c.windows, 1):>5.1f}  "
            f"{pct(c.ev_dataset, c.ev_windows):>17} {pct(c.ev_any, c.ev_windows):>17}"
        )
    print("\nTime per window (evaluation only; driftdesk includes counting the rows)")
    for size in SIZES:
        ours = [c for (_, _, s), c in cells.items() if s == size]
        dd = sum(c.seconds for c in ours) / max(sum(c.windows for c in ours), 1)
        ev_n = sum(c.ev_windows for c in ours)
        ev = sum(c.ev_seconds for c in ours) / ev_n if ev_n else math.nan
        print(f"  {size:>8,} rows: driftdesk {dd * 1000:7.1f} ms   Evidently {ev:6.2f} s")
    print(
        "\nShifts apply to the first numerical feature (normal) or the first categorical one\n"
        "(5 categories), or to all 20 numerical features. In 'all 20 num', the 4 integer-valued\n"
        "features move by 0.4 off their integer grid and stay in their bins: fixed bins cannot\n"
        "see a shift smaller than a bin of a discrete feature."
    )
    print(
        f"breast_cancer: {len(cancer.names)} numerical features, "
        f"{cancer.x.shape[0]} rows resampled; natural malignant share {cancer.natural_share:.1%}"
    )


if __name__ == "__main__":
    main()
