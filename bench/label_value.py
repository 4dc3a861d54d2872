"""What a label budget buys, and whether the audited estimate stays honest, through the service.

On scikit-learn's bundled handwritten digits (1,797 images, 10 classes; no
download), a logistic regression is trained on a small base set; the rest,
less a held-out test set, is a pool of production traffic. For each seed, a
fresh model is registered in the real service (under uvicorn on 127.0.0.1,
SQLite in a temporary folder; the base set is its reference), the pool is
posted to ``POST /v1/models/{name}/predictions`` with the model's 10-class
probabilities, and the service spends its label budget the way it always does
(``exceptions_queue.sampling.admit``: flagged records drawn with probability
proportional to their value, ``app/ingest/value.py``; a fixed audit of the
rest outside the budget). A reviewer resolves every ticket with the true
label (``/v1/tickets/claim``, ``/resolve``). Then:

- **the value of the labels**: the model retrained on base + the records the
  service chose, against base + the same number chosen uniformly from the pool,
  both scored on the test set;
- **the audited estimate**: ``GET /v1/models/{name}/performance``'s audited
  accuracy of the window (stratified Horvitz–Thompson from the labels and their
  recorded probabilities) against the base model's true accuracy on the pool:
  its bias over the seeds and how often its 95% interval covers; beside it the
  unweighted accuracy of the labelled records (biased: the budget picks hard ones).

The service's clock is simulated (each seed posts at minute 59 of its own hour,
so the batch is expected to be the hour's last and its share is nearly the
whole budget).

    python bench/label_value.py [--seeds 30] [--budget 100] [--audit-rate 0.05]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workforce import ADMIN, CLOCK, START, patch_service, start_server


def _fit(features: np.ndarray, labels: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, C=0.1).fit(features, labels)


def _record(x: np.ndarray) -> dict[str, float]:
    return {f"p{j}": float(v) for j, v in enumerate(x)}


def _register(
    http: httpx.Client,
    name: str,
    args: argparse.Namespace,
    pool: int,
    base: Any,
    base_x: np.ndarray,
    base_y: np.ndarray,
) -> None:
    body = {
        "name": name,
        "task": "classification",
        "features": [{"name": f"p{j}", "type": "numerical"} for j in range(base_x.shape[1])],
        "labels": [str(k) for k in range(10)],
        "window": {"kind": "count", "size": pool, "step": pool},
        "confidence_threshold": args.threshold,
        "options": {"ticket_budget_per_hour": args.budget, "audit_rate": args.audit_rate},
    }
    r = http.post("/v1/models", json=body)
    r.raise_for_status()
    proba = base.predict_proba(base_x)
    reference = [
        {
            "features": _record(x),
            "prediction": str(int(np.argmax(p))),
            "confidence": float(p.max()),
            "label": str(int(y)),
        }
        for x, p, y in zip(base_x, proba, base_y, strict=True)
    ]
    http.post(f"/v1/models/{name}/reference", json={"records": reference}).raise_for_status()


def _post_pool(http: httpx.Client, name: str, seed: int, base: Any, pool_x: np.ndarray) -> None:
    proba = base.predict_proba(pool_x)
    records = [
        {
            "id": f"s{seed}-{i}",
            "timestamp": (START + dt.timedelta(hours=seed)).isoformat(),
            "features": _record(x),
            "prediction": str(int(np.argmax(p))),
            "confidence": round(float(p.max()), 6),
            "probabilities": {str(k): float(v) for k, v in enumerate(p)},
        }
        for i, (x, p) in enumerate(zip(pool_x, proba, strict=True))
    ]
    for i in range(0, len(records), 1000):
        r = http.post(f"/v1/models/{name}/predictions", json={"predictions": records[i : i + 1000]})
        r.raise_for_status()


def _resolve_all(http: httpx.Client, truth: dict[str, str]) -> dict[str, str]:
    """Resolve every waiting ticket with its record's true label; the kinds of the labelled."""
    kinds: dict[str, str] = {}
    while True:
        r = http.post("/v1/tickets/claim")
        if r.status_code == 204:
            return kinds
        t = r.json()
        if t["kind"] in ("low_confidence", "audit"):
            label = truth[t["prediction_id"]]
            kinds[t["prediction_id"]] = t["kind"]
            r = http.post(f"/v1/tickets/{t['id']}/resolve", json={"label": label})
        else:  # a data-quality group: nothing to label here
            r = http.post(f"/v1/tickets/{t['id']}/dismiss", json={"reason": "bench"})
        r.raise_for_status()


def main() -> int:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--base", type=int, default=100)
    parser.add_argument("--audit-rate", type=float, default=0.05)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    x, y = load_digits(return_X_y=True)
    started = time.perf_counter()
    patch_service()
    url, (server, thread, sock), _ = start_server(Path(tempfile.mkdtemp(prefix="dd-bench-lv-")))
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)
    value_acc, uniform_acc, base_acc, errors, covered, naive_err, labels = ([] for _ in range(7))
    try:
        for seed in range(args.seeds):
            rest_x, test_x, rest_y, test_y = train_test_split(
                x, y, test_size=0.3, random_state=seed, stratify=y
            )
            base_x, pool_x, base_y, pool_y = train_test_split(
                rest_x, rest_y, train_size=args.base, random_state=seed, stratify=rest_y
            )
            base = _fit(base_x, base_y)
            name = f"digits{seed}"
            CLOCK.now = START + dt.timedelta(hours=seed, minutes=59)
            _register(http, name, args, len(pool_x), base, base_x, base_y)
            _post_pool(http, name, seed, base, pool_x)
            truth = {f"s{seed}-{i}": str(int(v)) for i, v in enumerate(pool_y)}
            kinds = _resolve_all(http, truth)
            chosen = np.array(sorted(int(k.split("-")[1]) for k in kinds))
            rng = np.random.default_rng(seed)
            uniform = rng.choice(len(pool_x), size=len(chosen), replace=False)
            by_value = _fit(np.vstack([base_x, pool_x[chosen]]), np.r_[base_y, pool_y[chosen]])
            by_chance = _fit(np.vstack([base_x, pool_x[uniform]]), np.r_[base_y, pool_y[uniform]])
            base_acc.append(base.score(test_x, test_y))
            value_acc.append(by_value.score(test_x, test_y))
            uniform_acc.append(by_chance.score(test_x, test_y))
            correct = base.predict(pool_x) == pool_y
            true_acc = float(correct.mean())
            r = http.get(f"/v1/models/{name}/performance")
            r.raise_for_status()
            audited = r.json()["items"][0]["metrics"]["accuracy"]["audited"]
            errors.append(audited["value"] - true_acc)
            covered.append(audited["ci_low"] <= true_acc <= audited["ci_high"])
            naive_err.append(float(correct[chosen].mean()) - true_acc)
            labels.append((len(chosen), sum(k == "audit" for k in kinds.values())))
    finally:
        http.close()
        server.should_exit = True
        thread.join(10)
        sock.close()
    va, ua, ba = np.array(value_acc), np.array(uniform_acc), np.array(base_acc)
    n_labels = np.array([n for n, _ in labels])
    n_audits = np.array([a for _, a in labels])
    print(
        f"digits through the service: base {args.base} labels; a budget of {args.budget} "
        f"flagged (confidence < {args.threshold}) records an hour drawn by value, plus a "
        f"{args.audit_rate:.0%} audit of the rest; {args.seeds} seeds; labels per seed "
        f"{n_labels.mean():.0f} (of them audits {n_audits.mean():.0f})"
    )
    print("  test accuracy (logistic regression, mean ± sd):")
    print(f"    base model only:                  {ba.mean():.4f} ± {ba.std():.4f}")
    print(f"    + the same number chosen uniformly: {ua.mean():.4f} ± {ua.std():.4f}")
    print(f"    + the labels the service chose:    {va.mean():.4f} ± {va.std():.4f}")
    print(
        f"    service - uniform: {np.mean(va - ua):+.4f} (better in {int(np.sum(va > ua))} of "
        f"{args.seeds} seeds, equal in {int(np.sum(va == ua))})"
    )
    err = np.array(errors)
    se = err.std(ddof=1) / np.sqrt(len(err))
    print("  the base model's accuracy on the pool, audited by the service (GET .../performance):")
    print(
        f"    bias {err.mean():+.4f} ({abs(err.mean()) / se:.1f} standard errors), "
        f"sd {err.std(ddof=1):.4f}, 95% interval covers {100 * np.mean(covered):.0f}% "
        f"of {args.seeds}"
    )
    print(
        f"    unweighted accuracy of the labelled records: bias {np.mean(naive_err):+.4f} "
        "(the budget picks the hard records)"
    )
    print(f"wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
