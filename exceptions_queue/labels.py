"""What a model's labels and options allow: the one label check of driftdesk.

Ingest (a prediction's output), feedback (ground truth) and the queue (a
reviewer's label) all check a value against the model with :func:`valid_label`;
each turns a :class:`LabelRefused` into its own error at its own field.
"""

from __future__ import annotations

import math
from typing import Any

from storage.options import ModelOptions
from storage.tables import LabelSchema

# Regression labels within this relative difference agree (and ground truth this far
# from the prediction disagrees with it).
REGRESSION_RTOL = 0.1


class LabelRefused(ValueError):
    """A value that is not a label of the model; the message says why."""


def valid_label(model: LabelSchema, value: object, *, what: str = "label") -> str | float:
    """``value`` as the model's label: one of its labels, or a finite number for regression.

    An integer given for a classification model is read as its text (``1`` is ``"1"``).

    >>> from storage.tables import MonitoredModel
    >>> m = MonitoredModel(task="classification", labels=["stay", "1"])
    >>> valid_label(m, 1), valid_label(MonitoredModel(task="regression"), 3)
    ('1', 3.0)
    >>> valid_label(m, "churn")
    Traceback (most recent call last):
    ...
    exceptions_queue.labels.LabelRefused: 'churn' is not one of the model's labels ['stay', '1']
    """
    if model.task == "classification":
        label = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(label, str) or label not in (model.labels or ()):
            raise LabelRefused(f"{value!r} is not one of the model's labels {model.labels}")
        return label
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LabelRefused(f"a regression {what} is a finite number")
    return float(value)


def labels_disagree(model: LabelSchema, a: Any, b: Any) -> bool:
    """Whether two labels (or a label and a prediction) differ for this model's task.

    >>> from storage.tables import MonitoredModel
    >>> m = MonitoredModel(task="regression")
    >>> labels_disagree(m, 10.0, 10.5), labels_disagree(m, 10.0, 13.0)
    (False, True)
    """
    if model.task == "regression":
        return not math.isclose(float(a), float(b), rel_tol=REGRESSION_RTOL)
    return str(a) != str(b)


def options_of(model: LabelSchema) -> ModelOptions:
    """The model's options, every default filled in."""
    return ModelOptions(**(model.options or {}))
