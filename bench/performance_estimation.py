"""Performance estimation without labels: driftdesk beside NannyML, on NannyML's own data.

NannyML's three bundled synthetic data sets — binary car-loan default
(CBPE), multiclass credit-card choice (CBPE) and car price regression (DLE) —
each a reference and an analysis period with targets. Per chunk of 5,000
analysis rows the bench prints the realized value (scikit-learn on the
targets), driftdesk's estimate and NannyML's, then each estimator's mean
absolute error against realized and how often its interval covers it.

* driftdesk: the spec/loss model fitted on the reference; each chunk's
  estimate is the sum of its five 1,000-row blocks' sums (as the service keeps
  them), read through ``monitors.performance`` directly (the service's
  ``GET /v1/models/{name}/performance`` returns the same sums' metrics).
  95% intervals.
* NannyML: run by ``bench/_nannyml_side.py`` in its own virtualenv (its pins
  conflict with ours), data exchanged through parquet/JSON files. NannyML's
  band is ±3 sampling errors; its coverage is also shown at ±1.96 (a 95%
  band) for a like-for-like comparison.

Then the time to read a 1,000,000-row window's performance: 1,000 block
sums, from the JSON a database column holds to the metrics with intervals.

Usage::

    python bench/performance_estimation.py --nannyml-python /path/to/nannyml-venv/bin/python
    # or DRIFTDESK_BENCH_NANNYML_PYTHON=/path/to/python python bench/performance_estimation.py

NannyML's virtualenv: ``python -m venv V && V/bin/pip install nannyml==0.13.1 statsmodels 'pandas<3'``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from monitors.performance import (
    Estimate,
    EstimatedClassification,
    EstimatedRegression,
    cbpe_sums,
    dle_sums,
    fit_classification,
    fit_dle,
    metric,
)

CHUNK = 5_000
BLOCK = 1_000
ENV = "DRIFTDESK_BENCH_NANNYML_PYTHON"
MULTICLASS = ("prepaid_card", "highstreet_card", "upmarket_card")


def run_nannyml(python: str, out: Path) -> None:
    side = Path(__file__).resolve().parent / "_nannyml_side.py"
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
    started = time.perf_counter()
    done = subprocess.run(
        [python, str(side), str(out)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"NannyML's side failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    print(f"NannyML side: {time.perf_counter() - started:.0f} s (fit and estimate, 3 data sets)")


def realized_classification(
    truth: np.ndarray, pred: np.ndarray, proba: np.ndarray, binary: bool
) -> dict[str, float]:
    out = {
        "accuracy": float(skm.accuracy_score(truth, pred)),
        "f1": float(
            skm.f1_score(truth, pred, average="binary" if binary else "macro", pos_label="1")
        ),
    }
    if binary:
        out["roc_auc"] = float(skm.roc_auc_score(truth == "1", proba[:, 1]))
    return out


def blocks_of(n: int) -> list[slice]:
    return [slice(i, min(i + BLOCK, n)) for i in range(0, n, BLOCK)]


def driftdesk_classification(
    name: str, out: Path
) -> tuple[list[dict[str, Any]], Callable[[], object]]:
    reference = pd.read_parquet(out / f"{name}_reference.parquet")
    analysis = pd.read_parquet(out / f"{name}_analysis.parquet")
    if name == "car_loan":
        classes, binary, target = ("0", "1"), True, "repaid"

        def frame(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            p = df["y_pred_proba"].to_numpy(float)
            return (
                df[target].astype(int).astype(str).to_numpy(),
                df["y_pred"].astype(int).astype(str).to_numpy(),
                np.column_stack([1 - p, p]),
            )
    else:
        classes, binary, target = MULTICLASS, False, "y_true"

        def frame(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            cols = [f"y_pred_proba_{c}" for c in MULTICLASS]
            return (
                df[target].astype(str).to_numpy(),
                df["y_pred"].astype(str).to_numpy(),
                df[cols].to_numpy(float),
            )

    ref_truth, ref_pred, ref_proba = frame(reference)
    spec = fit_classification(
        classes, labels=ref_truth, predicted=ref_pred, probabilities=ref_proba
    )
    truth, pred, proba = frame(analysis)
    names = ("accuracy", "f1", "roc_auc") if binary else ("accuracy", "f1")
    chunks = []
    for start in range(0, len(analysis), CHUNK):
        s = slice(start, start + CHUNK)
        sums = sum(
            (
                cbpe_sums(spec, pred[s][b], probabilities=proba[s][b])
                for b in blocks_of(len(pred[s]))
            ),
            EstimatedClassification.empty(spec),
        )
        chunks.append(
            {
                "realized": realized_classification(truth[s], pred[s], proba[s], binary),
                "driftdesk": {m: metric(sums, m) for m in names},
            }
        )

    def window_reader() -> object:
        # 1,000 blocks of 1,000 rows: the analysis set repeated to a million rows
        block_json = [
            cbpe_sums(spec, pred[b], probabilities=proba[b]).to_json() for b in blocks_of(len(pred))
        ]
        stored = [json.dumps(block_json[i % len(block_json)]) for i in range(1_000)]

        def read() -> object:
            total = EstimatedClassification.sum_json([json.loads(j) for j in stored])
            return {m: metric(total, m) for m in names}

        return read

    return chunks, window_reader


def driftdesk_regression(out: Path) -> tuple[list[dict[str, Any]], Callable[[], object]]:
    reference = pd.read_parquet(out / "car_price_reference.parquet")
    analysis = pd.read_parquet(out / "car_price_analysis.parquet")

    # the features NannyML's DLE was given (written by its side of the bench)
    features = json.loads((out / "car_price_nannyml.json").read_text())["features"]

    def columns(df: pd.DataFrame) -> dict[str, np.ndarray]:
        return {
            f: df[f].astype(object).to_numpy() if df[f].dtype == object else df[f].to_numpy(float)
            for f in features
        }

    started = time.perf_counter()
    model = fit_dle(columns(reference), reference["y_true"], reference["y_pred"])
    print(f"driftdesk DLE fit on the car-price reference: {time.perf_counter() - started:.1f} s")
    cols, pred, truth = (
        columns(analysis),
        analysis["y_pred"].to_numpy(float),
        analysis["y_true"].to_numpy(float),
    )
    chunks = []
    for start in range(0, len(analysis), CHUNK):
        s = slice(start, start + CHUNK)
        sums = sum(
            (
                dle_sums(model, {k: v[s][b] for k, v in cols.items()}, pred[s][b])
                for b in blocks_of(len(pred[s]))
            ),
            EstimatedRegression.empty(model),
        )
        chunks.append(
            {
                "realized": {
                    "mae": float(skm.mean_absolute_error(truth[s], pred[s])),
                    "rmse": float(np.sqrt(skm.mean_squared_error(truth[s], pred[s]))),
                },
                "driftdesk": {m: metric(sums, m) for m in ("mae", "rmse")},
            }
        )

    def window_reader() -> object:
        block_json = [
            dle_sums(model, {k: v[b] for k, v in cols.items()}, pred[b]).to_json()
            for b in blocks_of(len(pred))
        ]
        stored = [json.dumps(block_json[i % len(block_json)]) for i in range(1_000)]

        def read() -> object:
            total = EstimatedRegression.sum_json([json.loads(j) for j in stored])
            return {m: metric(total, m) for m in ("mae", "rmse")}

        return read

    return chunks, window_reader


def fmt(est: Estimate | dict[str, float] | None, scale: float) -> str:
    if est is None:
        return "—"
    if isinstance(est, Estimate):
        value, low, high = est.value, est.ci_low, est.ci_high
    else:
        value, low, high = est["value"], est["ci_low"], est["ci_high"]
    return f"{value * scale:8.3f} [{(low or 0) * scale:7.3f}, {(high or 0) * scale:7.3f}]"


def report(
    name: str, chunks: list[dict[str, Any]], nannyml: dict[str, Any], names: tuple[str, ...]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    nml_chunks = nannyml["chunks"]
    if len(nml_chunks) != len(chunks):
        sys.exit(f"{name}: NannyML has {len(nml_chunks)} chunks, driftdesk {len(chunks)}")
    for m in names:
        scale = 1.0
        print(f"\n{name} — {m} (per chunk of {CHUNK:,} rows; [95% interval], NannyML [±3σ band])")
        print(f"{'chunk':>5}  {'realized':>9}  {'driftdesk':>27}  {'NannyML':>27}")
        dd_err, nml_err, dd_cov, nml_cov, nml_cov95 = [], [], 0, 0, 0
        for i, (c, n) in enumerate(zip(chunks, nml_chunks, strict=True)):
            real = c["realized"][m]
            dd: Estimate = c["driftdesk"][m]
            nm = n[m]
            dd_err.append(abs(dd.value - real))
            nml_err.append(abs(nm["value"] - real))
            dd_cov += (dd.ci_low or 0) <= real <= (dd.ci_high or 0)
            nml_cov += nm["ci_low"] <= real <= nm["ci_high"]
            nml_cov95 += abs(nm["value"] - real) <= 1.959963984540054 * nm["sampling_error"]
            print(f"{i:>5}  {real * scale:9.4f}  {fmt(dd, scale):>27}  {fmt(nm, scale):>27}")
        k = len(chunks)
        row = {
            "driftdesk_error": statistics.fmean(dd_err),
            "nannyml_error": statistics.fmean(nml_err),
            "driftdesk_coverage": dd_cov / k,
            "nannyml_coverage": nml_cov / k,
            "nannyml_coverage_95": nml_cov95 / k,
            "chunks": k,
        }
        summary[m] = row
        print(
            f"mean |estimate − realized|: driftdesk {row['driftdesk_error']:.4f}, NannyML {row['nannyml_error']:.4f}; "
            f"coverage: driftdesk 95% {dd_cov}/{k}, NannyML ±3σ {nml_cov}/{k}, NannyML ±1.96σ {nml_cov95}/{k}"
        )
    return summary


def time_reader(read: Callable[[], object], repeats: int = 20) -> float:
    read()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        read()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--nannyml-python", default=os.environ.get(ENV), help=f"NannyML's interpreter (or ${ENV})"
    )
    parser.add_argument(
        "--data", type=Path, help="reuse NannyML's output from an earlier run in this folder"
    )
    args = parser.parse_args()
    print(
        "driftdesk side: through monitors.performance directly (block sums as the service stores them)"
    )
    with tempfile.TemporaryDirectory(prefix="dd-perf-bench-") as tmp:
        out = args.data or Path(tmp)
        if args.data is None:
            if not args.nannyml_python or not Path(args.nannyml_python).exists():
                sys.exit(
                    "NannyML's interpreter is needed: pass --nannyml-python PATH or set "
                    f"{ENV}. Make one outside the repository with\n"
                    "  python -m venv /work/nannyml-venv && "
                    "/work/nannyml-venv/bin/pip install nannyml==0.13.1 statsmodels 'pandas<3'"
                )
            run_nannyml(args.nannyml_python, out)
        results: dict[str, Any] = {}
        readers = {}
        for name, names in (
            ("car_loan", ("accuracy", "f1", "roc_auc")),
            ("multiclass", ("accuracy", "f1")),
        ):
            chunks, reader = driftdesk_classification(name, out)
            nml = json.loads((out / f"{name}_nannyml.json").read_text())
            results[name] = report(name, chunks, nml, names)
            readers[name] = reader
        chunks, reader = driftdesk_regression(out)
        nml = json.loads((out / "car_price_nannyml.json").read_text())
        results["car_price"] = report("car_price", chunks, nml, ("mae", "rmse"))
        readers["car_price"] = reader

    print(
        "\nSummary (mean absolute error against realized; share of chunks whose interval covers it)"
    )
    print(
        f"{'data set':<11} {'metric':<9} {'driftdesk err':>13} {'NannyML err':>12} {'dd 95% cov':>10} {'NML ±3σ':>8} {'NML ±1.96σ':>10}"
    )
    wins = True
    for name, rows in results.items():
        for m, r in rows.items():
            # a tie (the same method gives the same value) counts as "no larger"
            wins &= r["driftdesk_error"] <= r["nannyml_error"] * (1 + 1e-6)
            print(
                f"{name:<11} {m:<9} {r['driftdesk_error']:13.5f} {r['nannyml_error']:12.5f} "
                f"{r['driftdesk_coverage']:10.0%} {r['nannyml_coverage']:8.0%} {r['nannyml_coverage_95']:10.0%}"
            )
    print(f"driftdesk's error no larger than NannyML's on every data set and metric: {wins}")
    print(
        "\nReading a 1,000,000-row window (1,000 blocks' sums from JSON to metrics with intervals), median of 20:"
    )
    for name, make in readers.items():
        print(f"  {name:<11} {time_reader(make()) * 1000:7.1f} ms")  # type: ignore[operator]


if __name__ == "__main__":
    main()
