"""What a ticket page shows beside the ticket: features against the reference, drift charts.

A feature's position in its reference distribution comes from the reference
sketch (its bin edges and counts), so it is exact to a bin without reading the
reference rows; a drift ticket's charts compare the reference counts with the
sum of the evaluated window's blocks, as the detectors did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from markupsafe import Markup
from sqlalchemy.orm import Session

from app.drift.service import sum_blocks
from app.ingest.columns import CONFIDENCE, PREDICTION
from app.ingest.sketches import get_spec
from app.ingest.store import decode_counts
from app.reference.service import get_reference
from app.ui import charts
from monitors.sketch import SketchSpec
from storage.tables import MonitoredModel, Reference

DISPLAY_BINS = 24
OUTPUT_KEYS = {"prediction": PREDICTION, "confidence": CONFIDENCE}


@dataclass(frozen=True)
class FeatureRow:
    name: str
    kind: str
    value: Any
    missing: bool
    outside: bool
    # numerical: reference min / median / max; categorical: share of this value
    ref_min: float | None = None
    ref_median: float | None = None
    ref_max: float | None = None
    percentile: float | None = None
    share: float | None = None
    chart: Markup | None = None
    note: str = ""


def _percentile(spec: SketchSpec, name: str, ref_counts: npt.NDArray[np.int64], x: float) -> float:
    """The share (in %) of reference values below ``x``, interpolated inside its bin."""
    f = spec.feature(name)
    values, _missing = spec.split(name, ref_counts)
    edges = np.asarray(f.edges, dtype=np.float64)
    total = float(values.sum())
    if total <= 0:
        return 50.0
    if x < edges[0]:
        return 0.0
    if x >= edges[-1]:
        return 100.0
    inner = values[1:-1].astype(np.float64)  # bins; values[0] is underflow (0 for the reference)
    i = int(np.searchsorted(edges, x, side="right")) - 1
    below = float(values[0]) + float(inner[:i].sum())
    width = edges[i + 1] - edges[i]
    frac = 0.0 if width <= 0 else (x - edges[i]) / width
    return 100.0 * (below + frac * float(inner[i])) / total


def feature_rows(
    session: Session,
    *,
    model: MonitoredModel,
    features: Mapping[str, Any],
    reference: Reference | None,
) -> list[FeatureRow]:
    """Each model feature of one prediction beside the reference's summary and sketch."""
    spec = get_spec(session, reference.id) if reference is not None else None
    ref_counts = decode_counts(reference.counts) if reference is not None else None
    summary: dict[str, Any] = reference.summary if reference is not None else {}
    names = [f["name"] for f in model.features]
    names += [k for k in features if k not in names]  # extra features of a lenient model
    kinds = {f["name"]: f["type"] for f in model.features}
    rows: list[FeatureRow] = []
    for name in names:
        value = features.get(name)
        kind = kinds.get(name, "unknown")
        missing = value is None
        s = summary.get(name)
        if name not in kinds or s is None or spec is None or name not in spec.names:
            note = "not in the model's schema" if name not in kinds else "no reference yet"
            rows.append(FeatureRow(name, kind, value, missing, False, note=note))
            continue
        assert ref_counts is not None
        if missing:
            rows.append(FeatureRow(name, kind, value, True, False, note="missing"))
        elif kind == "numerical" and isinstance(value, int | float) and "min" in s:
            rows.append(_numerical_row(name, float(value), value, s, spec, ref_counts))
        elif kind == "numerical":
            rows.append(FeatureRow(name, kind, value, False, True, note="not a number"))
        else:
            rows.append(_categorical_row(name, kind, value, spec.histogram(name, ref_counts)))
    return rows


def _numerical_row(
    name: str,
    x: float,
    value: Any,
    s: Mapping[str, Any],
    spec: SketchSpec,
    ref_counts: npt.NDArray[np.int64],
) -> FeatureRow:
    """A number beside the reference's range, median and the percentile it sits at."""
    outside = x < s["min"] or x > s["max"]
    pct = _percentile(spec, name, ref_counts, x)
    return FeatureRow(
        name,
        "numerical",
        value,
        False,
        outside,
        ref_min=s["min"],
        ref_median=s.get("p50"),
        ref_max=s["max"],
        percentile=pct,
        chart=charts.position(
            pct,
            outside=outside,
            title=f"{name} = {x:g} sits at the {pct:.0f}th percentile of the reference",
        ),
        note=(
            "below the reference minimum"
            if x < s["min"]
            else "above the reference maximum"
            if x > s["max"]
            else ""
        ),
    )


def _categorical_row(name: str, kind: str, value: Any, hist: Mapping[str, Any]) -> FeatureRow:
    """A category beside its share of the reference (or "never seen")."""
    counts = hist["counts"]
    total = sum(counts) or 1
    text = str(value)
    known = text in hist["labels"][:-1]
    share = counts[hist["labels"].index(text)] / total if known else 0.0
    return FeatureRow(
        name,
        kind,
        value,
        False,
        not known,
        share=share,
        note="" if known else "never seen in the reference",
    )


@dataclass(frozen=True)
class DriftChart:
    name: str
    chart: Markup
    detector: str | None
    statistic: float | None
    p_value: float | None
    effect: float | None
    threshold: float | None


def _display_bins(hist: Mapping[str, Any], edges: Sequence[float]) -> tuple[list[float], list[str]]:
    """Equal-width display bins over the reference range (the sketch's bins are quantiles)."""
    lo, hi = float(edges[0]), float(edges[-1])
    width = (hi - lo) / DISPLAY_BINS or 1.0
    mids = [(edges[i] + edges[i + 1]) / 2 for i in range(len(edges) - 1)]
    index = [min(int((m - lo) / width), DISPLAY_BINS - 1) for m in mids]
    counts = [0.0] * DISPLAY_BINS
    for i, c in zip(index, hist["counts"], strict=True):
        counts[i] += c
    labels = [f"[{lo + i * width:.4g}, {lo + (i + 1) * width:.4g})" for i in range(DISPLAY_BINS)]
    return counts, labels


def _paired_bins(
    ref_h: Mapping[str, Any], win_h: Mapping[str, Any]
) -> tuple[list[float], list[float], list[str]]:
    """The reference's and the window's counts on the same display bins, and their labels
    (a numerical feature's equal-width bins with the under- and overflow at the ends)."""
    if ref_h["kind"] != "numerical":
        ref_c = [float(c) for c in ref_h["counts"]]
        win_c = [float(c) for c in win_h["counts"]]
        return ref_c, win_c, list(ref_h["labels"])
    ref_c, labels = _display_bins(ref_h, ref_h["edges"])
    win_c, _ = _display_bins(win_h, win_h["edges"])
    lo, hi = ref_h["edges"][0], ref_h["edges"][-1]
    return (
        [float(ref_h["underflow"]), *ref_c, float(ref_h["overflow"])],
        [float(win_h["underflow"]), *win_c, float(win_h["overflow"])],
        [f"< {lo:.4g}", *labels, f"> {hi:.4g}"],
    )


def drift_charts(
    session: Session, *, model: MonitoredModel, evaluation: Mapping[str, Any], names: Sequence[str]
) -> list[DriftChart]:
    """Reference vs window distribution of each drifted feature of an evaluation."""
    reference_id = evaluation.get("reference_id")
    blocks = evaluation.get("blocks")
    if not isinstance(reference_id, int) or not isinstance(blocks, list) or len(blocks) != 2:
        return []
    reference = get_reference(session, reference_id)
    if reference is None:
        return []
    spec = get_spec(session, reference_id)
    ref_counts = decode_counts(reference.counts)
    window = sum_blocks(
        session,
        model=model,
        reference_id=reference_id,
        spec=spec,
        blocks=range(int(blocks[0]), int(blocks[1]) + 1),
    )
    results = {f["name"]: f for f in evaluation.get("features", [])}
    for key in ("prediction", "confidence"):
        if evaluation.get(key):
            results[key] = evaluation[key]
    out: list[DriftChart] = []
    for name in names:
        sketch_name = OUTPUT_KEYS.get(name, name)
        if sketch_name not in spec.names:
            continue
        ref_h = spec.histogram(sketch_name, ref_counts)
        win_h = spec.histogram(sketch_name, window.counts)
        ref_c, win_c, labels = _paired_bins(ref_h, win_h)
        r = results.get(name, {})
        out.append(
            DriftChart(
                name=name,
                chart=charts.histogram_pair(
                    ref_c,
                    win_c,
                    labels=labels,
                    title=f"{name}: reference (grey) against the evaluated window (red)",
                    x_label=(
                        f"{name} (bins at reference quantiles)"
                        if ref_h["kind"] == "numerical"
                        else f"{name} (categories)"
                    ),
                ),
                detector=r.get("detector"),
                statistic=r.get("statistic"),
                p_value=r.get("p_value"),
                effect=r.get("effect"),
                threshold=r.get("threshold"),
            )
        )
    return out
