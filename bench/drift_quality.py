"""Drift quality: false alarms with no drift, detection rates with known shifts.

Each window is an independent draw of ``rows`` rows; driftdesk judges it from
counts (``SketchSpec.count`` then ``evaluate`` with the default
``DriftConfig()``: KS / chi-square with BH at alpha 0.01, calibrated effect
floors), exactly as the service does. Evidently's ``DataDriftPreset`` judges
the first few windows of each cell on the raw rows, against a 10k-row sample
of the same reference (it is slow); its dataset-level decision is "drift share
>= 0.5" (the preset default), and "any column" is whether it flags at least
one column.

Streams measure the detection delay: blocks of ``size / 5`` rows, each counted
once, windows of ``size`` rows as sums of the last five blocks' counts (a
``WindowSpec``, as the service keeps them), evaluated at every step with the
calibration of that size. Each seeded stream runs ``PRE_CHANGE_STEPS`` clean
window steps, then switches to the shifted distribution; the delay is the
number of shifted rows (and window steps) until the first drifted evaluation.
The clean prefix of stream ``k`` is the same for every shift of a dataset
(common random numbers), so the shifts are compared on the same traffic and
false alarms before the change are counted once per dataset and window size.
Evidently's ``DataDriftPreset`` runs on the first streams at 1k rows only.

Data: a 25-feature synthetic table (20 numerical, 5 categorical; see
``bench/_data.py``) and scikit-learn's bundled breast cancer set, resampled at
the natural class mix (reference, no drift) or at 45% malignant (a
subpopulation shift).

Usage: ``python bench/drift_quality.py [--quick] [--seed N]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts bench/ first on the path: put the repository root
# there instead, so the checkout's packages and bench._data import the same way
# whatever the folder holds.
sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import math
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bench._data import CATEGORICAL, KINDS, NUMERICAL, BreastCancer, Shift, synthetic
from monitors.drift import Calibration, DriftConfig, calibrate, evaluate
from monitors.sketch import Counts, SketchSpec
from monitors.window import WindowSpec

SIZES = (1_000, 10_000, 100_000)
EVIDENTLY_REFERENCE_ROWS = 10_000
SUBPOPULATION = 0.45
STEPS_PER_WINDOW = 5  # a window of `size` rows slides by size / 5: five blocks
PRE_CHANGE_STEPS = 5  # clean window steps of every stream before the change
MAX_STEPS = 10  # window steps after the change: the window is all shifted from step 5
EVIDENTLY_STREAM_ROWS = 1_000
EVIDENTLY_MAX_STEPS = 6  # one step past the first fully shifted window

Generator = Callable[[np.random.Generator, int], dict[str, np.ndarray]]
Rows = dict[str, np.ndarray]
Fitted = tuple[SketchSpec, Counts, pd.DataFrame, list[str], list[str]]


@dataclass(frozen=True)
class Scenario:
    dataset: str
    label: str
    drift: bool
    draw: Generator
    evidently_at_100k: bool = False  # Evidently takes ~10 s per 100k window: only a few
    # Evidently takes ~5 s (CPU) per 1k window: streams only where its dataset-level
    # decision (half the columns drifted) can fire at all.
    evidently_stream: bool = False


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


@dataclass
class Delays:
    """First drifted window step after the change, per stream (None: not within the limit)."""

    driftdesk: list[int | None]
    ev_dataset: list[int | None]
    ev_any: list[int | None]
    seconds: float = 0.0  # driftdesk: counting the shifted blocks and evaluating their windows
    steps: int = 0


@dataclass
class Prefix:
    """The clean start of one stream: block counts (and rows, for Evidently's streams)."""

    blocks: list[Counts]
    rows: list[Rows] | None
    alarms: int
    evaluations: int


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
            evidently_stream=True,
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
            evidently_stream=True,
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
        "--quick",
        action="store_true",
        help="fewer windows and streams (about 3.5 minutes instead of 8, on two unloaded cores)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # Evidently's import and runs are noisy

    if args.quick:
        null_windows = {1_000: 60, 10_000: 30, 100_000: 5}
        shift_windows = {1_000: 20, 10_000: 10, 100_000: 2}
        ev_windows = {1_000: 1, 10_000: 1, 100_000: 0}
        streams = {1_000: 10, 10_000: 10, 100_000: 3}
        ev_streams = 1
    else:
        null_windows = {1_000: 300, 10_000: 300, 100_000: 40}
        shift_windows = {1_000: 50, 10_000: 30, 100_000: 6}
        ev_windows = {1_000: 2, 10_000: 1, 100_000: 1}
        streams = {1_000: 20, 10_000: 20, 100_000: 10}
        ev_streams = 2

    started, cpu_started = time.perf_counter(), time.process_time()
    cancer = BreastCancer()
    config = DriftConfig()
    rng = np.random.default_rng(args.seed)
    references = {
        "synthetic": (synthetic(rng, 200_000), KINDS, NUMERICAL, CATEGORICAL),
        "breast_cancer": (cancer.sample(rng, 200_000), cancer.kinds, cancer.names, []),
    }
    fitted: dict[str, Fitted] = {}
    for name, (columns, kinds, numerical, categorical) in references.items():
        spec = SketchSpec.fit(columns, kinds)  # type: ignore[arg-type]
        frame = pd.DataFrame({k: v[:EVIDENTLY_REFERENCE_ROWS] for k, v in columns.items()})
        fitted[name] = (spec, spec.count(columns), frame, numerical, categorical)
    # Once per reference and window size, as the service caches it.
    calibrations_by_size = {
        size: {
            name: calibrate(spec, counts, window_rows=size, config=config)
            for name, (spec, counts, *_) in fitted.items()
        }
        for size in SIZES
    }

    cells: dict[tuple[str, str, int], Cell] = {}
    for size in SIZES:
        calibrations = calibrations_by_size[size]
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

    first_part = time.perf_counter() - started
    first_cpu = time.process_time() - cpu_started

    delays: dict[tuple[str, str, int], Delays] = {}
    false_alarms: dict[tuple[str, int], tuple[int, int]] = {}
    for size in SIZES:
        if streams[size] == 0:
            continue
        for dataset in fitted:
            prefixes = [
                reference_prefix(
                    next(s for s in scenarios(cancer) if s.dataset == dataset and not s.drift),
                    fitted[dataset],
                    calibrations_by_size[size][dataset],
                    config,
                    size=size,
                    rng=stream_rng(args.seed, dataset, size, k),
                    keep_rows=size == EVIDENTLY_STREAM_ROWS and k < ev_streams,
                )
                for k in range(streams[size])
            ]
            false_alarms[(dataset, size)] = (
                sum(p.alarms for p in prefixes),
                sum(p.evaluations for p in prefixes),
            )
            for scenario in scenarios(cancer):
                if scenario.dataset != dataset or not scenario.drift:
                    continue
                delays[(dataset, scenario.label, size)] = shifted_streams(
                    scenario,
                    fitted[dataset],
                    calibrations_by_size[size][dataset],
                    config,
                    prefixes,
                    size=size,
                    seed=args.seed,
                )
                print(f"  .. stream {dataset} / {scenario.label} / {size:,} rows", file=sys.stderr)
    streams_part = time.perf_counter() - started - first_part
    streams_cpu = time.process_time() - cpu_started - first_cpu

    print_table(cells, cancer)
    print_delays(delays, false_alarms)
    print(
        f"\ntotal time {time.perf_counter() - started:.0f} s wall, "
        f"{time.process_time() - cpu_started:.0f} s CPU "
        f"(independent windows {first_part:.0f} s wall, {first_cpu:.0f} s CPU; "
        f"streams {streams_part:.0f} s wall, {streams_cpu:.0f} s CPU)"
    )


def stream_rng(
    seed: int, dataset: str, size: int, stream: int, shift: str = ""
) -> np.random.Generator:
    """A generator of its own for each stream (and shift), whatever runs before it."""
    return np.random.default_rng([seed, zlib.crc32(f"{dataset}/{shift}".encode()), size, stream])


def window_counts(blocks: list[Counts], window: WindowSpec) -> Counts:
    """The counts of the window ending with the last block: the sum of its blocks' counts."""
    out: Counts = np.sum(
        [blocks[b] for b in window.window_blocks(last_block=len(blocks) - 1)], axis=0
    )
    return out


def window_frame(rows: list[Rows], window: WindowSpec) -> pd.DataFrame:
    """The raw rows of the window ending with the last block (for Evidently)."""
    last = [rows[b] for b in window.window_blocks(last_block=len(rows) - 1)]
    return pd.DataFrame({name: np.concatenate([r[name] for r in last]) for name in last[0]})


def reference_prefix(
    clean: Scenario,
    fitted: Fitted,
    calibration: Calibration,
    config: DriftConfig,
    *,
    size: int,
    rng: np.random.Generator,
    keep_rows: bool,
) -> Prefix:
    """Blocks of clean traffic: enough to fill a window, then ``PRE_CHANGE_STEPS`` evaluated steps."""
    spec, counts = fitted[0], fitted[1]
    window = WindowSpec("count", size, size // STEPS_PER_WINDOW)
    prefix = Prefix(blocks=[], rows=[] if keep_rows else None, alarms=0, evaluations=0)
    for b in range(window.blocks_per_window - 1 + PRE_CHANGE_STEPS):
        rows = clean.draw(rng, window.step)
        prefix.blocks.append(spec.count(rows))
        if prefix.rows is not None:
            prefix.rows.append(rows)
        if b >= window.blocks_per_window - 1:
            result = evaluate(
                spec,
                counts,
                window_counts(prefix.blocks, window),
                config=config,
                calibration=calibration,
            )
            prefix.alarms += result.drifted
            prefix.evaluations += 1
    return prefix


def shifted_streams(
    scenario: Scenario,
    fitted: Fitted,
    calibration: Calibration,
    config: DriftConfig,
    prefixes: list[Prefix],
    *,
    size: int,
    seed: int,
) -> Delays:
    """Continue each clean prefix with shifted blocks, one window step at a time, until drift."""
    spec, counts, ref_frame, numerical, categorical = fitted
    window = WindowSpec("count", size, size // STEPS_PER_WINDOW)
    delays = Delays(driftdesk=[], ev_dataset=[], ev_any=[])
    for k, prefix in enumerate(prefixes):
        rng = stream_rng(seed, scenario.dataset, size, k, shift=scenario.label)
        blocks = list(prefix.blocks)
        rows = None if prefix.rows is None or not scenario.evidently_stream else list(prefix.rows)
        ours: int | None = None
        ev_dataset: int | None = None
        ev_any: int | None = None
        for step in range(1, MAX_STEPS + 1):
            block_rows = scenario.draw(rng, window.step)
            tick = time.perf_counter()
            blocks.append(spec.count(block_rows))
            if ours is None:
                result = evaluate(
                    spec,
                    counts,
                    window_counts(blocks, window),
                    config=config,
                    calibration=calibration,
                )
                ours = step if result.drifted else None
                delays.steps += 1
            delays.seconds += time.perf_counter() - tick
            if rows is not None:
                rows.append(block_rows)
                if ev_dataset is None and step <= EVIDENTLY_MAX_STEPS:
                    dataset, any_column = evidently_decision(
                        ref_frame, window_frame(rows, window), numerical, categorical
                    )
                    ev_dataset = step if dataset else None
                    ev_any = step if ev_any is None and any_column else ev_any
            evidently_done = rows is None or ev_dataset is not None or step >= EVIDENTLY_MAX_STEPS
            if ours is not None and evidently_done:
                break
        delays.driftdesk.append(ours)
        if rows is not None:
            delays.ev_dataset.append(ev_dataset)
            delays.ev_any.append(ev_any)
    return delays


def median_delay(steps: list[int | None], step_rows: int, limit: int) -> str:
    """Median over streams, those that never fired counting as later than any that did."""
    if not steps:
        return "-"
    ordered = sorted(math.inf if s is None else s for s in steps)
    median = ordered[(len(ordered) - 1) // 2]  # the lower median: a step that happened
    if math.isinf(median):
        return f"> {limit * step_rows:,} (> {limit})"
    return f"{int(median) * step_rows:,} ({int(median)})"


def each_delay(steps: list[int | None], step_rows: int, limit: int) -> str:
    if not steps:
        return "-"
    return ", ".join(
        f"> {limit * step_rows:,}" if s is None else f"{s * step_rows:,}" for s in steps
    )


def heading(columns: str) -> None:
    """A table's column names, underlined."""
    print(columns)
    print("-" * len(columns))


def scenario_name(dataset: str, label: str) -> str:
    return label if dataset == "synthetic" else f"{dataset}: {label}"


def pct(k: int, n: int) -> str:
    return "-" if n == 0 else f"{100.0 * k / n:5.1f}% ({n})"


def print_table(cells: dict[tuple[str, str, int], Cell], cancer: BreastCancer) -> None:
    print("\nFalse alarms with no drift (share of windows flagged; 95% upper bound)")
    heading(
        f"{'dataset':<14} {'rows':>8}  {'driftdesk':>15} {'≤ (95%)':>8}  "
        f"{'Evidently dataset':>17} {'Evidently any col':>17}"
    )
    for (dataset, label, size), c in cells.items():
        if label != "no drift":
            continue
        print(
            f"{dataset:<14} {size:>8,}  {pct(c.flagged, c.windows):>15} "
            f"{upper_95(c.flagged, c.windows):>7.1%}  "
            f"{pct(c.ev_dataset, c.ev_windows):>17} {pct(c.ev_any, c.ev_windows):>17}"
        )
    print("\nDetection with known shifts (share of windows flagged; mean features flagged)")
    heading(
        f"{'scenario':<38} {'rows':>8}  {'driftdesk':>15} {'feat.':>5}  "
        f"{'Evidently dataset':>17} {'Evidently any col':>17}"
    )
    for (dataset, label, size), c in cells.items():
        if label == "no drift":
            continue
        name = scenario_name(dataset, label)
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


def print_delays(
    delays: dict[tuple[str, str, int], Delays], false_alarms: dict[tuple[str, int], tuple[int, int]]
) -> None:
    print(
        f"\nDetection delay on streams (window = rows, step = rows / {STEPS_PER_WINDOW}; "
        f"the change comes after {PRE_CHANGE_STEPS} clean steps)"
    )
    print(
        "delay: shifted rows (window steps) until the first drifted evaluation, the median over\n"
        f"the streams; missed: streams with no drift within {MAX_STEPS} steps. Evidently: the\n"
        f"delay on each of the first streams at {EVIDENTLY_STREAM_ROWS:,} rows (within "
        f"{EVIDENTLY_MAX_STEPS} steps), and driftdesk's on the\nsame streams; only for the "
        "shifts that move most columns, since its dataset-level decision\n"
        "needs half the columns drifted and never fires on a one-column shift"
    )
    heading(
        f"{'scenario':<38} {'rows':>8} {'streams':>7}  {'median delay':>14} {'missed':>10}  "
        f"{'Evidently dataset':>17} {'any column':>12} {'driftdesk':>12}"
    )
    for (dataset, label, size), d in delays.items():
        name = scenario_name(dataset, label)
        step_rows = size // STEPS_PER_WINDOW
        missed = sum(s is None for s in d.driftdesk)
        # driftdesk on the streams Evidently ran, for a paired comparison
        same = d.driftdesk[: len(d.ev_dataset)]
        print(
            f"{name:<38} {size:>8,} {len(d.driftdesk):>7}  "
            f"{median_delay(d.driftdesk, step_rows, MAX_STEPS):>14} "
            f"{missed:>3} ({100.0 * missed / len(d.driftdesk):3.0f}%)  "
            f"{each_delay(d.ev_dataset, step_rows, EVIDENTLY_MAX_STEPS):>17} "
            f"{each_delay(d.ev_any, step_rows, EVIDENTLY_MAX_STEPS):>12} "
            f"{each_delay(same, step_rows, MAX_STEPS):>12}"
        )
    print(
        "\nFalse alarms before the change (drifted clean window steps; the prefixes are shared "
        "by every\nshift of a dataset, so these are counted once per dataset and window size)"
    )
    for (dataset, size), (alarms, evaluations) in false_alarms.items():
        print(
            f"  {dataset:<14} {size:>8,} rows: {alarms} of {evaluations} evaluations "
            f"(≤ {upper_95(alarms, evaluations):.1%} at 95%)"
        )
    steps = sum(d.steps for d in delays.values())
    seconds = sum(d.seconds for d in delays.values())
    print(
        "  driftdesk per window step (count the block, sum the window's blocks, evaluate): "
        f"{seconds / max(steps, 1) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
