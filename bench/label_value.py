"""What a label budget buys: labels chosen by value against labels chosen uniformly.

On scikit-learn's bundled handwritten digits (1,797 images, 10 classes; no
download), a logistic regression is trained on a small base set. A pool of
unlabelled records stands for production traffic; a fixed budget of labels is
spent on it either uniformly or by the value sampler (``monitors.sampling``:
uncertainty from confidence, margin and entropy; novelty outside the base
set's pixel ranges; diversity over binned pixels; pivotal sampling of exactly
the budget), and the model is retrained on base + the labelled records. Both
are scored on a held-out test set, over several seeds.

The same value sample also measures the base model: its accuracy on the pool,
estimated from the labelled records weighted by ``1/π`` (Horvitz–Thompson), is
unbiased; the unweighted accuracy of those records is not (they are the hard
ones). Shown over many repeated draws.

    python bench/label_value.py [--seeds 10] [--budget 100]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitors.sampling import (
    diversity_groups,
    horvitz_thompson,
    inclusion_probabilities,
    novelty,
    pivotal_sample,
    poisson_sample,
    record_value,
    uncertainty,
)


def values_for(model: object, base_x: np.ndarray, pool_x: np.ndarray) -> np.ndarray:
    from exceptions_queue.rules import margin_and_entropy

    proba = model.predict_proba(pool_x)  # type: ignore[attr-defined]
    margin, entropy = margin_and_entropy(proba)
    unsure = uncertainty(proba.max(axis=1), margin=margin, entropy=entropy, n_labels=proba.shape[1])
    novel = novelty(pool_x, base_x.min(axis=0), base_x.max(axis=0))
    groups = diversity_groups(np.digitize(pool_x, [4.0, 12.0]))  # pixels: off, faint, ink
    return record_value(uncertainty=unsure, novelty=novel, groups=groups)


def main() -> int:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--base", type=int, default=100)
    parser.add_argument("--draws", type=int, default=20000)
    args = parser.parse_args()
    x, y = load_digits(return_X_y=True)
    started = time.perf_counter()

    def fit(features: np.ndarray, labels: np.ndarray) -> LogisticRegression:
        return LogisticRegression(max_iter=2000, C=0.1).fit(features, labels)

    value_acc, uniform_acc, base_acc = [], [], []
    for seed in range(args.seeds):
        rest_x, test_x, rest_y, test_y = train_test_split(
            x, y, test_size=0.3, random_state=seed, stratify=y
        )
        base_x, pool_x, base_y, pool_y = train_test_split(
            rest_x, rest_y, train_size=args.base, random_state=seed, stratify=rest_y
        )
        base = fit(base_x, base_y)
        base_acc.append(base.score(test_x, test_y))
        rng = np.random.default_rng(seed)
        pi = inclusion_probabilities(values_for(base, base_x, pool_x), float(args.budget))
        chosen = pivotal_sample(pi, rng)
        uniform = rng.choice(len(pool_x), size=int(chosen.sum()), replace=False)
        by_value = fit(
            np.vstack([base_x, pool_x[chosen]]), np.concatenate([base_y, pool_y[chosen]])
        )
        by_chance = fit(
            np.vstack([base_x, pool_x[uniform]]), np.concatenate([base_y, pool_y[uniform]])
        )
        value_acc.append(by_value.score(test_x, test_y))
        uniform_acc.append(by_chance.score(test_x, test_y))
    va, ua, ba = np.array(value_acc), np.array(uniform_acc), np.array(base_acc)
    print(
        f"digits: base {args.base} labels, budget {args.budget} more, {args.seeds} seeds "
        f"(logistic regression, test accuracy mean ± sd)"
    )
    print(f"  base model only:        {ba.mean():.4f} ± {ba.std():.4f}")
    print(f"  + uniform labels:       {ua.mean():.4f} ± {ua.std():.4f}")
    print(f"  + value-sampled labels: {va.mean():.4f} ± {va.std():.4f}")
    print(
        f"  value - uniform: {np.mean(va - ua):+.4f} (better in {int(np.sum(va > ua))} of "
        f"{args.seeds} seeds, equal in {int(np.sum(va == ua))})"
    )

    # the audited estimate of the base model's accuracy on the pool, from the value sample
    rest_x, _, rest_y, _ = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    base_x, pool_x, base_y, pool_y = train_test_split(
        rest_x, rest_y, train_size=args.base, random_state=0, stratify=rest_y
    )
    base = fit(base_x, base_y)
    correct = (base.predict(pool_x) == pool_y).astype(float)
    truth = correct.mean()
    pi = inclusion_probabilities(values_for(base, base_x, pool_x), float(args.budget))
    rng = np.random.default_rng(12345)
    ht, hajek, naive, covered = [], [], [], []
    n = len(pool_x)
    for _ in range(args.draws):
        s = poisson_sample(pi, rng)
        total, var = horvitz_thompson(correct[s], pi[s])
        ht.append(total / n)
        hajek.append(total / float(np.sum(1.0 / pi[s])))
        naive.append(correct[s].mean())
        half = 1.96 * np.sqrt(var) / n
        covered.append(total / n - half <= truth <= total / n + half)
    ht_a, naive_a = np.array(ht), np.array(naive)
    se = ht_a.std() / np.sqrt(len(ht_a))
    print(
        f"audited accuracy of the base model on the pool ({n} records, true {truth:.4f}), "
        f"{args.draws} Poisson draws of the value sample:"
    )
    print(
        f"  Horvitz-Thompson: mean {ht_a.mean():.4f} (bias {ht_a.mean() - truth:+.4f}, "
        f"{abs(ht_a.mean() - truth) / se:.1f} standard errors), sd {ht_a.std():.4f}, "
        f"95% interval covers {100 * np.mean(covered):.1f}%"
    )
    hj = np.array(hajek)
    print(
        f"  Hajek (ratio to the estimated pool size): mean {hj.mean():.4f} "
        f"(bias {hj.mean() - truth:+.4f}), sd {hj.std():.4f}"
    )
    print(
        f"  unweighted mean of the labelled records: {naive_a.mean():.4f} "
        f"(bias {naive_a.mean() - truth:+.4f}: the sampler picks the hard records)"
    )
    print(f"wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
