"""Model performance: realized, audited and label-free estimated, as block sums.

Every estimator keeps *sums* per block of traffic that add up to a window's,
so a window's performance costs O(blocks) whatever its size:

* :mod:`~monitors.performance.classification` — realized from labels, and the
  spec (classes, score bins, calibration) fitted on the reference;
* :mod:`~monitors.performance.cbpe` — classification without labels (CBPE);
* :mod:`~monitors.performance.regression` — regression realized from labels;
* :mod:`~monitors.performance.dle` — regression without labels (DLE);
* :mod:`~monitors.performance.audit` — reviewers' labels weighted by their
  inclusion probabilities (stratified Horvitz–Thompson);
* :mod:`~monitors.performance.estimate` — the :class:`Estimate` type and intervals.

Numpy (and scikit-learn for fitting) in, frozen dataclasses out; no I/O, no
clock, no database.
"""

from monitors.performance.audit import (
    AuditSums,
    audit_classification,
    audit_population,
    audit_regression,
    population_of,
)
from monitors.performance.calibration import Calibration, Isotonic
from monitors.performance.cbpe import EstimatedClassification, cbpe_sums
from monitors.performance.classification import (
    CLASSIFICATION_METRICS,
    ClassificationSpec,
    LabelledClassification,
    fit_classification,
    labelled_classification,
)
from monitors.performance.dle import EstimatedRegression, LossModel, dle_sums, fit_dle
from monitors.performance.estimate import Estimate, disagree
from monitors.performance.metrics import Sums, metric, metrics, reference_metrics
from monitors.performance.regression import (
    REGRESSION_METRICS,
    LabelledRegression,
    labelled_regression,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "AuditSums",
    "Calibration",
    "ClassificationSpec",
    "Estimate",
    "EstimatedClassification",
    "EstimatedRegression",
    "Isotonic",
    "LabelledClassification",
    "LabelledRegression",
    "LossModel",
    "Sums",
    "audit_classification",
    "audit_population",
    "audit_regression",
    "cbpe_sums",
    "disagree",
    "dle_sums",
    "fit_classification",
    "fit_dle",
    "labelled_classification",
    "labelled_regression",
    "metric",
    "metrics",
    "population_of",
    "reference_metrics",
]
