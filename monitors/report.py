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

Untrusted text. Category values and column names come from API clients, and
Evidently writes its data into an inline ``<script>`` with plain ``json.dumps``:
a category ``</script><script>...`` closes the block and runs as the page's own
script. :func:`build_report` therefore re-encodes that data block itself
(``<``, ``>`` and ``&`` as ``\\u003c``-style escapes, so no value can end the
script or start markup; the browser decodes them back to the same text), and
returns the SHA-256 hashes of the inline scripts it emitted, so the page can be
served under a ``Content-Security-Policy`` that runs those scripts and nothing
else (:attr:`ReportPage.content_security_policy`).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ReportPage:
    """A report document and what a browser must allow for it to render."""

    html: str
    script_hashes: tuple[str, ...]
    """``'sha256-...'`` sources of the document's inline scripts, in order."""

    @property
    def content_security_policy(self) -> str:
        """A policy that runs exactly this document's scripts, in an opaque-origin sandbox.

        Styles may be inline (Evidently and Plotly set them at run time; CSS runs
        no code), fonts and images only from ``data:``/``blob:``; no network, no
        forms, no framing, and ``sandbox allow-scripts`` without
        ``allow-same-origin``: even a script that ran could not act as the site.
        """
        return "; ".join(
            [
                "default-src 'none'",
                "script-src " + " ".join(self.script_hashes),
                "style-src 'unsafe-inline'",
                "img-src data: blob:",
                "font-src data:",
                "connect-src 'none'",
                "base-uri 'none'",
                "form-action 'none'",
                "frame-ancestors 'none'",
                "sandbox allow-scripts",
            ]
        )


def build_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numerical: Sequence[str],
    categorical: Sequence[str],
    title: str | None = None,
) -> ReportPage:
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
    ReportPage
        A standalone HTML document (scripts and fonts inlined; works offline) whose
        data cannot break out of its script block, and the hashes of its scripts.

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
    >>> page.html.lstrip().startswith("<!DOCTYPE html>"), "<title>churn model</title>" in page.html
    (True, True)
    >>> "'sha256-" in page.content_security_policy
    True
    """
    columns = _check_columns(reference, current, [*numerical, *categorical])
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
    document, hashes = _encode_data_block(document)
    if title is not None:
        document = _titled(document, title)
    return ReportPage(html=document, script_hashes=hashes)


def _check_columns(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> list[str]:
    """The columns to compare, each named once and present in both (non-empty) samples."""
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
    return columns


def _titled(document: str, title: str) -> str:
    """The document with ``title`` (escaped) as its title and as a heading above the report."""
    escaped = html.escape(title)
    document = document.replace("<head>", f"<head>\n<title>{escaped}</title>", 1)
    return document.replace(
        "<body>", f'<body>\n<h1 style="font-family: sans-serif">{escaped}</h1>', 1
    )


# Evidently 0.7's file_html_template: a style block (no data), then in <head>
#   <script>\n    var metric_<hex> = <json>;\n    var additional_graphs_metric_<hex> = <json>;\n</script>
# and after it only the template's own scripts (no data).
_DATA_START = re.compile(r"<script>\s*var (metric_[0-9a-f]+) = ")
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_UNSAFE_IN_SCRIPT = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def script_safe_json(value: object) -> str:
    """JSON that can sit inside an HTML ``<script>``: no ``<``, ``>`` or ``&`` characters.

    Outside strings JSON has none of them, so escaping every occurrence changes
    only how strings are spelled, never what they decode to.

    >>> script_safe_json(["</script><b>&"])
    '["\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"]'
    """
    text = json.dumps(value)  # ensure_ascii: U+2028/U+2029 are escaped too
    return re.sub(r"[<>&]", lambda m: _UNSAFE_IN_SCRIPT[m.group()], text)


def _encode_data_block(document: str) -> tuple[str, tuple[str, ...]]:
    """Re-encode Evidently's data script safely; hash every inline script of the result.

    The data is located by its JSON grammar (``raw_decode``), not by looking for
    ``</script>``, which a hostile value may contain. If the document is not
    shaped as expected (another Evidently version), refuse rather than serve it.
    """
    start = _DATA_START.search(document)
    if start is None:
        raise RuntimeError("unexpected Evidently report layout: no data script found")
    dashboard_id = start.group(1)
    decoder = json.JSONDecoder()
    info, pos = decoder.raw_decode(document, start.end())
    middle = re.compile(rf";\s*var additional_graphs_{dashboard_id} = ").match(document, pos)
    if middle is None:
        raise RuntimeError("unexpected Evidently report layout: no additional graphs")
    graphs, pos = decoder.raw_decode(document, middle.end())
    end = re.compile(r";\s*</script>").match(document, pos)
    if end is None:
        raise RuntimeError("unexpected Evidently report layout: data script not closed")
    data_script = (
        f"\nvar {dashboard_id} = {script_safe_json(info)};\n"
        f"var additional_graphs_{dashboard_id} = {script_safe_json(graphs)};\n"
    )
    head, tail = document[: start.start()], document[end.end() :]
    if "<script" in head:
        raise RuntimeError("unexpected Evidently report layout: a script before the data")
    scripts = [data_script] + [m.group(1) for m in _SCRIPT.finditer(tail)]
    hashes = tuple(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    )
    return f"{head}<script>{data_script}</script>{tail}", hashes


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
