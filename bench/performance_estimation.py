"""Performance estimation without labels: driftdesk beside NannyML, on NannyML's own data.

NannyML's three bundled synthetic data sets — binary car-loan default
(CBPE), multiclass credit-card choice (CBPE) and car price regression (DLE) —
each a reference and an analysis period with targets. Per chunk of 5,000
analysis rows the bench prints the realized value (scikit-learn on the
targets), driftdesk's estimate and NannyML's, then each estimator's mean
absolute error against realized and how often its interval covers it.

* driftdesk: a real ``driftdesk serve`` on 127.0.0.1 (SQLite in a temporary
  folder, background loops on), driven through the Python client over HTTP:
  the model is registered, the reference posted as JSON records (features,
  ``prediction``, ``label`` and ``probabilities``), then the analysis rows in
  batches of 1,000 (one block each; windows of 5,000 rows, five blocks), and
  after each chunk of 5,000 the window it fills is read from
  ``GET /v1/models/{name}/performance?limit=1``: the estimate, its 95%
  interval and ``n``. The estimate is label-free; ground truth for 10% of each
  chunk (``--feedback``) is posted too, so that the window's
  ``concept_shift_suspected`` can say where labels and estimate disagree.
* NannyML: run by ``bench/_nannyml_side.py`` in its own virtualenv (its pins
  conflict with ours), data exchanged through parquet/JSON files. NannyML's
  band is ±3 sampling errors; its coverage is also shown at ±1.96 (a 95%
  band) for a like-for-like comparison.

The multiclass analysis period has a concept shift (its second half: the
scores promise more than the labels give), which no label-free estimate can
see; its coverage is printed for all chunks, for the chunks before the shift
apart, and for the chunks driftdesk did not flag ``concept_shift_suspected``
apart: never silently dropped.

Last, with the targets, the bench checks whether the relation between inputs
and outcome holds in each half of every analysis period (:func:`relation_check`):
a learner of the outcome a label-free estimate predicts (being right; the
absolute error) fitted on the reference, against learners fitted on the
period's own rows. Where only the period's own learners find the realized
value, the relation changed: a concept shift, which no estimate fitted on the
reference follows without labels.

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
from typing import Any

import numpy as np
import pandas as pd
from driftdesk_client import Client
from sklearn import metrics as skm

from bench._server import DriftdeskServer

CHUNK = 5_000
BLOCK = 1_000
ENV = "DRIFTDESK_BENCH_NANNYML_PYTHON"
MULTICLASS = ("prepaid_card", "highstreet_card", "upmarket_card")


def run_nannyml(python: str, out: Path) -> None:
    side = Path(__file__).resolve().parent / "_nannyml_side.py"
    # NannyML reports usage to a remote service unless told not to
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
    started = time.perf_counter()
    done = subprocess.run(
        [python, str(side), str(out)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"NannyML's side failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    print(f"NannyML side: {time.perf_counter() - started:.0f} s (fit and estimate, 3 data sets)")


ADMIN = "dd_bench_performance_estimation_0123456789"
# the analysis chunk from which NannyML's multiclass set has its concept shift (chunks 6-11)
CONCEPT_SHIFT_FROM = {"multiclass": 6}


def value(v: Any) -> Any:
    """A cell as JSON: numpy scalars to Python, NaN to null, booleans as categories."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, bool):
        return str(v)
    return v


def feature_columns(df: pd.DataFrame, outputs: set[str]) -> dict[str, str]:
    """The features as driftdesk types them: numbers numerical, the rest categorical."""
    out = {}
    for name in df.columns:
        if name in outputs or name in ("id", "timestamp"):
            continue
        kind = df[name].dtype.kind
        out[name] = "numerical" if kind in "if" else "categorical"
    return out


class DataSet:
    """One of NannyML's sets as driftdesk sees it: records with features and outputs."""

    def __init__(self, name: str, out: Path) -> None:
        self.name = name
        self.reference = pd.read_parquet(out / f"{name}_reference.parquet")
        self.analysis = pd.read_parquet(out / f"{name}_analysis.parquet")
        if name == "car_loan":
            self.task, self.labels, self.target = "classification", ["0", "1"], "repaid"
            self.metrics: tuple[str, ...] = ("accuracy", "f1", "roc_auc")
            outputs = {"y_pred_proba", "y_pred", "repaid"}
        elif name == "multiclass":
            self.task, self.labels, self.target = "classification", list(MULTICLASS), "y_true"
            self.metrics = ("accuracy", "f1")
            outputs = {"y_pred", "y_true", *(f"y_pred_proba_{c}" for c in MULTICLASS)}
        else:
            self.task, self.labels, self.target = "regression", None, "y_true"
            self.metrics = ("mae", "rmse")
            outputs = {"y_pred", "y_true"}
        self.features = feature_columns(self.reference, outputs)

    def model_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": f"nml-{self.name.replace('_', '-')}",
            "task": self.task,
            "features": [{"name": n, "type": t} for n, t in self.features.items()],
            # a window of one chunk: five blocks of 1,000 rows
            "window": {"kind": "count", "size": CHUNK, "step": BLOCK},
        }
        if self.labels:
            body["labels"] = self.labels
        return body

    def probabilities(self, df: pd.DataFrame) -> np.ndarray | None:
        if self.name == "car_loan":
            p = df["y_pred_proba"].to_numpy(float)
            return np.column_stack([1 - p, p])
        if self.name == "multiclass":
            return df[[f"y_pred_proba_{c}" for c in MULTICLASS]].to_numpy(float)
        return None

    def predictions(self, df: pd.DataFrame) -> list[Any]:
        if self.name == "car_loan":
            return df["y_pred"].astype(int).astype(str).tolist()
        if self.name == "multiclass":
            return df["y_pred"].astype(str).tolist()
        return df["y_pred"].astype(float).tolist()

    def truth(self, df: pd.DataFrame) -> list[Any]:
        if self.name == "car_loan":
            return df[self.target].astype(int).astype(str).tolist()
        if self.name == "multiclass":
            return df[self.target].astype(str).tolist()
        return df[self.target].astype(float).tolist()

    def records(self, df: pd.DataFrame, *, with_label: bool, ids: str) -> list[dict[str, Any]]:
        names = list(self.features)
        rows = df[names].to_dict(orient="records")
        pred = self.predictions(df)
        proba = self.probabilities(df)
        truth = self.truth(df) if with_label else None
        out = []
        for i, row in enumerate(rows):
            rec: dict[str, Any] = {
                "features": {k: value(v) for k, v in row.items()},
                "prediction": pred[i],
            }
            if proba is not None and self.labels is not None:
                rec["probabilities"] = {
                    c: round(float(p), 6) for c, p in zip(self.labels, proba[i], strict=True)
                }
            if truth is not None:
                rec["label"] = truth[i]
            else:
                rec["id"] = f"{ids}-{i}"
            out.append(rec)
        return out

    def realized(self, df: pd.DataFrame) -> dict[str, float]:
        if self.task == "regression":
            t, p = df[self.target].to_numpy(float), df["y_pred"].to_numpy(float)
            return {
                "mae": float(skm.mean_absolute_error(t, p)),
                "rmse": float(np.sqrt(skm.mean_squared_error(t, p))),
            }
        truth, pred = np.array(self.truth(df)), np.array(self.predictions(df))
        binary = self.name == "car_loan"
        f1 = (
            skm.f1_score(truth, pred, average="binary", pos_label="1")
            if binary
            else skm.f1_score(truth, pred, average="macro")
        )
        out = {"accuracy": float(skm.accuracy_score(truth, pred)), "f1": float(f1)}
        if binary:
            proba = self.probabilities(df)
            assert proba is not None
            out["roc_auc"] = float(skm.roc_auc_score(truth == "1", proba[:, 1]))
        return out


def driftdesk_side(data: DataSet, client: Client, feedback: float) -> list[dict[str, Any]]:
    """Register, post the reference and the analysis chunk by chunk; read each chunk's window.

    With ``feedback`` > 0, ground truth for that share of each chunk's records (drawn
    at random, fixed seed) is posted to /feedback before the window is read: the
    estimate stays label-free, and the window's ``concept_shift_suspected`` says
    whether the labels and the estimate disagree beyond their intervals.
    """
    body = data.model_body()
    name = body["name"]
    client.create_model(**body)
    started = time.perf_counter()
    client.upload_reference(name, data.records(data.reference, with_label=True, ids="ref"))
    wait_fitted(client, name)
    print(
        f"driftdesk {data.name}: reference posted and fitted in "
        f"{time.perf_counter() - started:.1f} s ({len(data.reference):,} rows)"
    )
    chunks = []
    for start in range(0, len(data.analysis), CHUNK):
        chunk = data.analysis.iloc[start : start + CHUNK]
        records = data.records(chunk, with_label=False, ids=f"a{start}")
        for b in range(0, len(records), BLOCK):
            client.post_predictions(name, records[b : b + BLOCK])
        if feedback > 0:
            rng = np.random.default_rng(start)
            truth = data.truth(chunk)
            picked = np.flatnonzero(rng.random(len(records)) < feedback)
            client.post_feedback(
                name, [{"id": records[i]["id"], "label": truth[i]} for i in picked.tolist()]
            )
        item = client.page(f"/v1/models/{name}/performance", {"limit": 1}).items[0]
        if item["rows"] != len(chunk):
            sys.exit(f"{data.name}: the window at chunk {start // CHUNK} has {item['rows']} rows")
        chunks.append(
            {
                "realized": data.realized(chunk),
                "driftdesk": {m: item["metrics"][m]["estimated"] for m in data.metrics},
                "concept_shift_suspected": bool(item["concept_shift_suspected"]),
            }
        )
    return chunks


def wait_fitted(client: Client, name: str, timeout: float = 900.0) -> None:
    """Until the reference's label-free estimate is ready (the loss models fit in the
    background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        perf = client.get_reference(name).get("performance") or {}
        status = perf.get("status", "ready")
        if status == "ready":
            return
        if status != "fitting":
            sys.exit(f"{name}: the reference cannot estimate performance: {perf}")
        time.sleep(0.5)
    sys.exit(f"{name}: the reference was not fitted within {timeout:.0f} s")


def fmt(est: dict[str, Any] | None) -> str:
    if est is None:
        return "—"
    value, low, high = est["value"], est["ci_low"], est["ci_high"]
    return f"{value:9.4f} [{(low or 0):9.4f}, {(high or 0):9.4f}]"


def covers(est: dict[str, Any] | None, real: float) -> bool:
    return est is not None and (est["ci_low"] or 0) <= real <= (est["ci_high"] or 0)


def report(
    name: str, chunks: list[dict[str, Any]], nannyml: dict[str, Any], names: tuple[str, ...]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    nml_chunks = nannyml["chunks"]
    if len(nml_chunks) != len(chunks):
        sys.exit(f"{name}: NannyML has {len(nml_chunks)} chunks, driftdesk {len(chunks)}")
    shift = CONCEPT_SHIFT_FROM.get(name)
    for m in names:
        print(f"\n{name} — {m} (per chunk of {CHUNK:,} rows; [95% interval], NannyML [±3σ band])")
        print(f"{'chunk':>5}  {'realized':>10}  {'driftdesk':>31}  {'NannyML':>31}")
        dd_err, nml_err, dd_cov, nml_cov, nml_cov95 = [], [], [], [], []
        for i, (c, n) in enumerate(zip(chunks, nml_chunks, strict=True)):
            real = c["realized"][m]
            dd = c["driftdesk"][m]
            nm = n[m]
            dd_err.append(abs(dd["value"] - real) if dd else float("inf"))
            nml_err.append(abs(nm["value"] - real))
            dd_cov.append(covers(dd, real))
            nml_cov.append(nm["ci_low"] <= real <= nm["ci_high"])
            nml_cov95.append(abs(nm["value"] - real) <= 1.959963984540054 * nm["sampling_error"])
            mark = "  (concept shift)" if shift is not None and i >= shift else ""
            mark += "  [concept_shift_suspected]" if c.get("concept_shift_suspected") else ""
            print(f"{i:>5}  {real:10.4f}  {fmt(dd):>31}  {fmt(nm):>31}{mark}")
        k = len(chunks)
        row: dict[str, Any] = {
            "driftdesk_error": statistics.fmean(dd_err),
            "nannyml_error": statistics.fmean(nml_err),
            "driftdesk_coverage": sum(dd_cov) / k,
            "nannyml_coverage": sum(nml_cov) / k,
            "nannyml_coverage_95": sum(nml_cov95) / k,
            "chunks": k,
        }
        flagged = [bool(c.get("concept_shift_suspected")) for c in chunks]
        row["flagged"] = sum(flagged)
        if any(flagged) and not all(flagged):
            kept = [i for i in range(k) if not flagged[i]]
            row["unflagged"] = {
                "chunks": len(kept),
                "driftdesk_error": statistics.fmean(dd_err[i] for i in kept),
                "nannyml_error": statistics.fmean(nml_err[i] for i in kept),
                "driftdesk_coverage": sum(dd_cov[i] for i in kept) / len(kept),
                "nannyml_coverage_95": sum(nml_cov95[i] for i in kept) / len(kept),
            }
        if shift is not None:
            row["before_shift"] = {
                "chunks": shift,
                "driftdesk_error": statistics.fmean(dd_err[:shift]),
                "nannyml_error": statistics.fmean(nml_err[:shift]),
                "driftdesk_coverage": sum(dd_cov[:shift]) / shift,
                "nannyml_coverage_95": sum(nml_cov95[:shift]) / shift,
            }
        summary[m] = row
        print(
            f"mean |estimate − realized|: driftdesk {row['driftdesk_error']:.5f}, "
            f"NannyML {row['nannyml_error']:.5f}; coverage: driftdesk 95% {sum(dd_cov)}/{k}, "
            f"NannyML ±3σ {sum(nml_cov)}/{k}, NannyML ±1.96σ {sum(nml_cov95)}/{k}"
        )
    return summary


FOLDS = 5


def relation_check(data: DataSet, seed: int = 0) -> list[tuple[str, float, float, float]]:
    """Whether the relation between inputs and outcome holds in each half of the analysis.

    With the targets, one learner of the outcome a label-free estimate predicts
    (regression: ``|y_true − y_pred|``; classification: whether the prediction
    is right) from the features and the model's outputs is fitted on the
    reference, and others on the period's own rows (cross-fitted: each read on
    the fold it was not fitted on). Where the reference's learner misses the realized
    mean and the period's own learner does not, the relation itself changed (a
    concept shift), and no estimate fitted on the reference can follow without
    labels. Returns (period, realized, reference's learner, period's learner).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    names = list(data.features)
    categorical = [n for n in names if data.features[n] == "categorical"]
    levels = {n: sorted(map(str, data.reference[n].dropna().unique())) for n in categorical}

    def design(df: pd.DataFrame) -> np.ndarray:
        cols = [
            df[n].astype(str).map({v: i for i, v in enumerate(levels[n])}).to_numpy(float)
            if n in levels
            else df[n].to_numpy(float)
            for n in names
        ]
        outputs = data.probabilities(df)
        extra = (
            df[["y_pred"]].to_numpy(float) if outputs is None else np.asarray(outputs, dtype=float)
        )
        return np.column_stack([*cols, extra])

    def outcome(df: pd.DataFrame) -> np.ndarray:
        if data.task == "regression":
            return np.abs(df[data.target].to_numpy(float) - df["y_pred"].to_numpy(float))
        return (np.array(data.truth(df)) == np.array(data.predictions(df))).astype(float)

    def learner() -> Any:
        params = {"max_iter": 300, "learning_rate": 0.05, "min_samples_leaf": 50}
        params |= {"early_stopping": False, "random_state": seed}
        if data.task == "regression":
            return HistGradientBoostingRegressor(**params)
        return HistGradientBoostingClassifier(**params)

    def mean_prediction(model: Any, x: np.ndarray) -> float:
        if data.task == "regression":
            return float(model.predict(x).mean())
        return float(model.predict_proba(x)[:, 1].mean())

    reference = learner().fit(design(data.reference), outcome(data.reference))
    half = len(data.analysis) // 2
    rows = []
    for label, part in (
        (f"chunks 0-{half // CHUNK - 1}", data.analysis.iloc[:half]),
        (f"chunks {half // CHUNK}-{len(data.analysis) // CHUNK - 1}", data.analysis.iloc[half:]),
    ):
        x, y = design(part), outcome(part)
        folds = np.random.default_rng(seed).permutation(len(part)) % FOLDS
        own = [
            mean_prediction(learner().fit(x[folds != k], y[folds != k]), x[folds == k])
            for k in range(FOLDS)
        ]
        rows.append((label, float(y.mean()), mean_prediction(reference, x), float(np.mean(own))))
    return rows


def print_relation_checks(out: Path, sets: list[str]) -> None:
    what = {"regression": "mean |error|", "classification": "accuracy"}
    print(
        "\nDoes the relation between inputs and outcome hold? (with the targets: a learner "
        "fitted on the reference\nagainst learners fitted on the period's own rows, "
        f"cross-fitted in {FOLDS} folds)"
    )
    print(
        f"{'data set':<11} {'period':<12} {'outcome':<13} {'realized':>10} "
        f"{'reference':>10} {'own rows':>10}"
    )
    for name in sets:
        data = DataSet(name, out)
        for label, realized, ref, own in relation_check(data):
            print(
                f"{name:<11} {label:<12} {what[data.task]:<13} {realized:10.4f} "
                f"{ref:10.4f} {own:10.4f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--nannyml-python", default=os.environ.get(ENV), help=f"NannyML's interpreter (or ${ENV})"
    )
    parser.add_argument(
        "--data", type=Path, help="reuse NannyML's output from an earlier run in this folder"
    )
    parser.add_argument(
        "--sets", default="car_loan,multiclass,car_price", help="comma-separated data sets"
    )
    parser.add_argument(
        "--feedback",
        type=float,
        default=0.1,
        help="share of each chunk's records whose ground truth is posted (0: none)",
    )
    args = parser.parse_args()
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
        env = {
            "DRIFTDESK_DATABASE_URL": f"sqlite:///{Path(tmp) / 'driftdesk.db'}",
            "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": ADMIN,
            "DRIFTDESK_EVALUATE_INTERVAL_SECONDS": "1",
        }
        results: dict[str, Any] = {}
        # background loops on (they fit the loss models), one worker process
        with (
            DriftdeskServer(env=env, args=["--workers", "1"], start_timeout=300) as server,
            Client(server.url, ADMIN, timeout=900) as client,
        ):
            print(f"driftdesk side: `driftdesk serve` at {server.url}, through the HTTP API")
            for name in args.sets.split(","):
                data = DataSet(name, out)
                chunks = driftdesk_side(data, client, args.feedback)
                nml = json.loads((out / f"{name}_nannyml.json").read_text())
                results[name] = report(name, chunks, nml, data.metrics)
        print_relation_checks(out, args.sets.split(","))

    print(
        "\nSummary (mean absolute error against realized; share of chunks whose interval covers it)"
    )
    print(
        f"{'data set':<11} {'metric':<9} {'driftdesk err':>13} {'NannyML err':>12} "
        f"{'dd 95% cov':>10} {'NML ±3σ':>8} {'NML ±1.96σ':>10}"
    )
    wins = True
    for name, rows in results.items():
        for m, r in rows.items():
            # a tie (the same method gives the same value) counts as "no larger"
            wins &= r["driftdesk_error"] <= r["nannyml_error"] * (1 + 1e-6)
            print(
                f"{name:<11} {m:<9} {r['driftdesk_error']:13.5f} {r['nannyml_error']:12.5f} "
                f"{r['driftdesk_coverage']:10.0%} {r['nannyml_coverage']:8.0%} "
                f"{r['nannyml_coverage_95']:10.0%}"
            )
            if "unflagged" in r:
                u = r["unflagged"]
                print(
                    f"{'':<11} {'  unflagged':<9} {u['driftdesk_error']:13.5f} "
                    f"{u['nannyml_error']:12.5f} {u['driftdesk_coverage']:10.0%} {'':>8} "
                    f"{u['nannyml_coverage_95']:10.0%}   ({u['chunks']} chunks driftdesk did not "
                    "flag concept_shift_suspected)"
                )
            if "before_shift" in r:
                b = r["before_shift"]
                print(
                    f"{'':<11} {'  chunks 0-' + str(b['chunks'] - 1):<9} "
                    f"{b['driftdesk_error']:13.5f} {b['nannyml_error']:12.5f} "
                    f"{b['driftdesk_coverage']:10.0%} {'':>8} {b['nannyml_coverage_95']:10.0%}"
                    "   (before the concept shift)"
                )
    print(f"driftdesk's error no larger than NannyML's on every data set and metric: {wins}")


if __name__ == "__main__":
    main()
