"""A standalone HTML drift report built with Evidently's data drift preset.

This is the only module that imports Evidently, and it does so inside
:func:`build_report`: the import takes seconds, and nothing else in
``monitors`` needs it. Pass it samples (the service uses a bounded sample of a
window's rows and of the reference), not whole windows: Evidently rescans raw
rows, about 3 s for 10k rows × 25 columns.

Offline use. In Evidently 0.7, ``Snapshot.get_html_str(as_iframe=False)``
renders ``evidently.legacy.utils.dashboard.file_html_template`` with its
defaults ``embed_lib=True`` and ``embed_font=True``: the dashboard's JavaScript
bundle (``evidently/nbextension/static/index.js``, about 3.7 MB, with Plotly)
and its icon font are inlined, and no ``<script src=...>`` or ``<link>``
points anywhere. The only CDN address inside is Plotly's default
``topojsonURL`` (``https://cdn.plot.ly/``), fetched only to draw geographic
maps, which the drift preset never draws. So the document renders with no
network access; no extra option is needed. (Evidently's ``as_iframe=True``
form wraps the same document for notebooks.)
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def build_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numerical: Sequence[str],
    categorical: Sequence[str],
    title: str | None = None,
) -> str:
    """Evidently's data drift report of ``current`` against ``reference``, as one HTML document.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        Samples of reference and window rows; other columns are ignored.
    numerical, categorical : sequence of str
        The columns to compare, by kind.
    title : str, optional
        Document title (escaped), also shown as a heading above the report.

    Returns
    -------
    str
        A standalone HTML document (scripts and fonts inlined; works offline).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = lambda shift: pd.DataFrame({
    ...     "age": rng.normal(40 + shift, 10, 300),
    ...     "plan": rng.choice(["free", "pro"], 300),
    ... })
    >>> page = build_report(frame(0), frame(5), numerical=["age"], categorical=["plan"],
    ...                     title="churn model")
    >>> page.lstrip().startswith("<!DOCTYPE html>"), "<title>churn model</title>" in page
    (True, True)
    """
    columns = [*numerical, *categorical]
    if not columns:
        raise ValueError("name at least one numerical or categorical column")
    if len(set(columns)) != len(columns):
        raise ValueError("a column cannot be both numerical and categorical, or repeated")
    for name, frame in (("reference", reference), ("current", current)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise KeyError(f"{name} sample lacks columns: {', '.join(map(repr, missing))}")
        if len(frame) == 0:
            raise ValueError(f"the {name} sample is empty")

    ev = _evidently()
    definition = ev.DataDefinition(
        numerical_columns=list(numerical), categorical_columns=list(categorical)
    )
    report = ev.Report([ev.DataDriftPreset(columns=columns)])
    # Evidently's chi-square divides by zero expected counts when a category is
    # new in the window; numpy's error state is thread-local, unlike warnings filters.
    with np.errstate(divide="ignore", invalid="ignore"):
        snapshot = report.run(
            ev.Dataset.from_pandas(current[columns].copy(), data_definition=definition),
            ev.Dataset.from_pandas(reference[columns].copy(), data_definition=definition),
        )
        document: str = snapshot.get_html_str(as_iframe=False)
    if title is not None:
        escaped = html.escape(title)
        document = document.replace("<head>", f"<head>\n<title>{escaped}</title>", 1)
        document = document.replace(
            "<body>", f'<body>\n<h1 style="font-family: sans-serif">{escaped}</h1>', 1
        )
    return document


def _evidently() -> SimpleNamespace:
    """Import Evidently's report API (slow: seconds, so only when a report is built)."""
    with warnings.catch_warnings():
        # Importing evidently 0.7 imports its UI server, which calls a litestar
        # API deprecated in litestar 2.23 (LitestarDeprecationWarning, attributed
        # to litestar itself). It is noise about code we never run; silence it
        # for the import only.
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset
    return SimpleNamespace(
        DataDefinition=DataDefinition,
        Dataset=Dataset,
        Report=Report,
        DataDriftPreset=DataDriftPreset,
    )
