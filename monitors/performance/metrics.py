"""One entry point for every estimate: ``metric(sums, name)``.

Examples
--------
>>> from monitors.performance.regression import labelled_regression
>>> sums = labelled_regression([1.0, 2.0, 3.0], [1.0, 2.5, 3.5])
>>> metric(sums, "mae").value
0.3333333333333333
>>> sorted(metrics(sums))
['mae', 'rmse']
>>> metric(sums, "accuracy") is None       # not a regression metric
True
>>> reference_metrics(sums)["mae"]
0.3333333333333333
"""

from __future__ import annotations

from collections.abc import Iterable

from monitors.performance.audit import AuditSums
from monitors.performance.cbpe import EstimatedClassification
from monitors.performance.classification import LabelledClassification
from monitors.performance.dle import EstimatedRegression
from monitors.performance.estimate import Estimate
from monitors.performance.regression import LabelledRegression

Sums = (
    LabelledClassification
    | EstimatedClassification
    | LabelledRegression
    | EstimatedRegression
    | AuditSums
)


def metric(sums: Sums, name: str) -> Estimate | None:
    """The named metric of a window's sums, with its 95% interval.

    None when it cannot be made: no labels or rows, a metric that does not
    apply to these sums (``roc_auc`` of a multiclass model, ``ece`` without
    labels, ``f1`` of an audit), or a ratio whose denominator is 0.
    """
    return sums.estimate(name)


def metrics(sums: Sums, names: Iterable[str] | None = None) -> dict[str, Estimate | None]:
    """Several metrics at once (default: every one these sums can give)."""
    return {name: sums.estimate(name) for name in (sums.names if names is None else names)}


def reference_metrics(sums: Sums) -> dict[str, float | None]:
    """Point values of every metric, for the reference's own labelled sums."""
    return {name: (None if est is None else est.value) for name, est in metrics(sums).items()}
