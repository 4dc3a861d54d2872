"""NannyML's side of bench/performance_estimation.py, run by NannyML's own interpreter.

NannyML pins versions that conflict with driftdesk's environment, so the bench
runs this file in a separate virtualenv: ``python _nannyml_side.py OUT_DIR``.
It writes, for each of NannyML's bundled synthetic data sets,

* ``{name}_reference.parquet`` and ``{name}_analysis.parquet`` (analysis with
  its targets joined), the data both tools read;
* ``{name}_nannyml.json``: per chunk of ``CHUNK`` rows, NannyML's CBPE / DLE
  estimate, its confidence band and sampling error, for every metric.

It imports nothing of driftdesk's.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

# NannyML reports usage to a remote service unless told not to; benches talk to 127.0.0.1 only
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

import nannyml as nml

CHUNK = 5_000

SETS: dict[str, dict[str, Any]] = {
    "car_loan": {
        "load": nml.load_synthetic_car_loan_dataset,
        "target": "repaid",
        "kind": "cbpe",
        "problem_type": "classification_binary",
        "y_pred_proba": "y_pred_proba",
        "metrics": ["accuracy", "f1", "roc_auc"],
    },
    "multiclass": {
        "load": nml.load_synthetic_multiclass_classification_dataset,
        "target": "y_true",
        "kind": "cbpe",
        "problem_type": "classification_multiclass",
        "y_pred_proba": {
            "prepaid_card": "y_pred_proba_prepaid_card",
            "highstreet_card": "y_pred_proba_highstreet_card",
            "upmarket_card": "y_pred_proba_upmarket_card",
        },
        "metrics": ["accuracy", "f1", "roc_auc"],
    },
    "car_price": {
        "load": nml.load_synthetic_car_price_dataset,
        "target": "y_true",
        "kind": "dle",
        "features": [
            "car_age",
            "km_driven",
            "price_new",
            "accident_count",
            "door_count",
            "fuel",
            "transmission",
        ],
        "metrics": ["mae", "rmse"],
    },
}


def run(name: str, spec: dict[str, Any], out: Path) -> None:
    reference, analysis, targets = spec["load"]()
    analysis = analysis.merge(targets, on="id")
    reference.to_parquet(out / f"{name}_reference.parquet")
    analysis.to_parquet(out / f"{name}_analysis.parquet")
    started = time.perf_counter()
    if spec["kind"] == "cbpe":
        estimator = nml.CBPE(
            y_pred_proba=spec["y_pred_proba"],
            y_pred="y_pred",
            y_true=spec["target"],
            timestamp_column_name="timestamp",
            metrics=spec["metrics"],
            chunk_size=CHUNK,
            problem_type=spec["problem_type"],
        )
    else:
        estimator = nml.DLE(
            feature_column_names=spec["features"],
            y_pred="y_pred",
            y_true=spec["target"],
            timestamp_column_name="timestamp",
            metrics=spec["metrics"],
            chunk_size=CHUNK,
        )
    estimator.fit(reference)
    fitted = time.perf_counter()
    results = estimator.estimate(analysis.drop(columns=[spec["target"]])).to_df()
    estimated = time.perf_counter()
    analysis_rows = results[results[("chunk", "period")] == "analysis"]
    chunks = []
    for _, row in analysis_rows.iterrows():
        item: dict[str, Any] = {
            "start": int(row[("chunk", "start_index")]),
            "end": int(row[("chunk", "end_index")]) + 1,
        }
        for metric in spec["metrics"]:
            item[metric] = {
                "value": float(row[(metric, "value")]),
                "ci_low": float(row[(metric, "lower_confidence_boundary")]),
                "ci_high": float(row[(metric, "upper_confidence_boundary")]),
                "sampling_error": float(row[(metric, "sampling_error")]),
            }
        chunks.append(item)
    (out / f"{name}_nannyml.json").write_text(
        json.dumps(
            {
                "version": nml.__version__,
                "features": spec.get("features"),
                "fit_seconds": fitted - started,
                "estimate_seconds": estimated - fitted,
                "chunks": chunks,
            }
        )
    )


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")
    for name, spec in SETS.items():
        run(name, spec, out)
        print(f"nannyml: {name} done", file=sys.stderr)


if __name__ == "__main__":
    main()
