"""What a model's dashboard shows, read from the stored evaluations, incidents and blocks.

Nothing here rescans raw rows except ingest volume (an indexed range count per
hour); distributions over time come from the window blocks' sketch counts.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from markupsafe import Markup
from sqlalchemy.orm import Session

from app import incidents
from app.drift import repository as drift
from app.drift.tables import DriftEvaluation, DriftIncident
from app.ingest import repository as ingest
from app.ingest.columns import CONFIDENCE, PREDICTION
from app.ingest.sketches import get_spec
from app.ingest.store import decode_counts
from app.performance import service as performance
from app.performance.tables import PerformanceIncident
from app.tickets import views
from app.tickets.schemas import QueueSummary
from app.ui import charts
from exceptions_queue import service as queue
from monitors.sketch import SketchSpec
from storage.tables import MonitoredModel

EVALUATIONS_SHOWN = 60
WINDOWS_SHOWN = 48
BLOCKS_SHOWN = 48
VOLUME_HOURS = 48


@dataclass
class FeatureTrend:
    name: str
    chart: Markup
    drifted_now: bool
    last_effect: float | None
    last_threshold: float | None
    detector: str | None


@dataclass
class Dashboard:
    model: MonitoredModel
    trends: list[FeatureTrend] = field(default_factory=list)
    evaluations: list[DriftEvaluation] = field(default_factory=list)
    incidents: list[DriftIncident] = field(default_factory=list)
    prediction_chart: Markup | None = None
    prediction_legend: list[tuple[str, str]] = field(default_factory=list)
    confidence_chart: Markup | None = None
    # why a chart is empty, so the empty state says what to do
    prediction_empty: str = ""
    confidence_empty: str = ""
    volume_chart: Markup | None = None
    volume_total: int = 0
    performance_chart: Markup | None = None
    performance_metric: str | None = None
    performance_windows: list[dict[str, Any]] = field(default_factory=list)
    performance_incidents: list[PerformanceIncident] = field(default_factory=list)


def _eval_label(ev: DriftEvaluation) -> str:
    end = ev.window_end or ev.created_at
    return f"evaluation {ev.id} ({end:%m-%d %H:%M})"


def _incident_spans(evaluations: Sequence[DriftEvaluation]) -> list[charts.Span]:
    spans: list[charts.Span] = []
    start: int | None = None
    current: int | None = None
    for i, ev in enumerate([*evaluations, None]):
        iid = ev.incident_id if ev is not None else None
        if iid != current:
            if current is not None and start is not None:
                spans.append(charts.Span(start, i - 1, f"incident {current}"))
            start, current = (i, iid) if iid is not None else (None, None)
    return spans


def feature_trends(evaluations: Sequence[DriftEvaluation]) -> list[FeatureTrend]:
    """Per-feature effect against threshold over the given evaluations (oldest first)."""
    names: list[str] = []
    per: dict[str, list[dict[str, Any] | None]] = defaultdict(list)
    for i, ev in enumerate(evaluations):
        r = ev.result
        entries = list(r.get("features", []))
        entries += [r[k] for k in ("prediction", "confidence") if r.get(k)]
        for f in entries:
            name = f["name"]
            if name not in per:
                names.append(name)
                per[name] = [None] * i
            per[name].append(f)
        for name in names:
            if len(per[name]) < i + 1:
                per[name].append(None)
    labels = [_eval_label(ev) for ev in evaluations]
    spans = _incident_spans(evaluations)
    out: list[FeatureTrend] = []
    for name in names:
        series = per[name]
        last = next((f for f in reversed(series) if f is not None), None)
        out.append(
            FeatureTrend(
                name=name,
                chart=charts.drift_line(
                    [None if f is None else f.get("effect") for f in series],
                    [None if f is None else f.get("threshold") for f in series],
                    [bool(f and f.get("drifted")) for f in series],
                    labels=labels,
                    spans=spans,
                    title=f"Drift effect of {name} per evaluation against its threshold",
                ),
                drifted_now=bool(series and series[-1] and series[-1].get("drifted")),
                last_effect=None if last is None else last.get("effect"),
                last_threshold=None if last is None else last.get("threshold"),
                detector=None if last is None else last.get("detector"),
            )
        )
    return out


def _block_counts(
    session: Session, model: MonitoredModel, spec: SketchSpec
) -> list[tuple[int, npt.NDArray[np.int64], dt.datetime]]:
    """The current reference's latest blocks: (block, summed counts, last timestamp)."""
    assert model.reference_id is not None
    rows = ingest.latest_block_parts(session, model.id, model.reference_id, BLOCKS_SHOWN)
    summed: dict[int, npt.NDArray[np.int64]] = {}
    last: dict[int, dt.datetime] = {}
    for block, blob, last_ts in rows:
        counts = decode_counts(blob)
        summed[block] = summed[block] + counts if block in summed else counts
        last[block] = max(last.get(block, last_ts), last_ts)
    return [(b, summed[b], last[b]) for b in sorted(summed)]


def histogram_quantiles(hist: dict[str, Any], qs: Sequence[float]) -> list[float | None]:
    """Quantiles of a numerical sketch histogram, interpolated linearly inside bins."""
    edges = np.asarray(hist["edges"], dtype=np.float64)
    inner = np.asarray(hist["counts"], dtype=np.float64)
    # underflow and overflow are placed at the outer edges
    counts = np.concatenate(([hist["underflow"]], inner, [hist["overflow"]])).astype(np.float64)
    total = counts.sum()
    if total <= 0:
        return [None for _ in qs]
    lefts = np.concatenate(([edges[0]], edges[:-1], [edges[-1]]))
    rights = np.concatenate(([edges[0]], edges[1:], [edges[-1]]))
    cum = np.cumsum(counts)
    out: list[float | None] = []
    for q in qs:
        target = q * total
        i = int(np.searchsorted(cum, target, side="left"))
        i = min(i, len(counts) - 1)
        before = cum[i] - counts[i]
        frac = 0.0 if counts[i] == 0 else (target - before) / counts[i]
        out.append(float(lefts[i] + (rights[i] - lefts[i]) * frac))
    return out


def _empty_reason(column: str, *, reference: bool, in_reference: bool, blocks: bool) -> str:
    """Why nothing of ``column`` (prediction, confidence) was counted, and what to do."""
    if not reference:
        return (
            "the model has no reference yet: counts are taken in its bins "
            "(POST /v1/models/{name}/reference)"
        )
    if not in_reference:
        return (
            f"the reference has no {column!r} column, so there are no bins to count "
            f"{column}s in: upload a reference that carries it (the README's 'Reference data')"
        )
    if not blocks:
        return "no traffic counted against the current reference yet"
    return f"the predictions since the reference carry no {column!r}"


def _prediction_chart(board: Dashboard, hists: list[dict[str, Any]], labels: list[str]) -> None:
    """Each block's predicted labels as shares (classification), or its predicted value's
    median and p10–p90 band (regression)."""
    if hists[0]["kind"] == "categorical":
        categories = list(hists[0]["labels"])
        board.prediction_chart = charts.stacked_shares(
            [h["counts"] for h in hists],
            categories=categories,
            labels=labels,
            title=f"Share of each predicted label per block, last {len(hists)} blocks",
        )
        board.prediction_legend = [
            (
                c,
                charts.PALETTE[j % len(charts.PALETTE)]
                if j < len(categories) - 1
                else charts.OTHER_COLOUR,
            )
            for j, c in enumerate(categories)
        ]
    else:
        qs = [histogram_quantiles(h, (0.1, 0.5, 0.9)) for h in hists]
        finite = [v for q in qs for v in q if v is not None]
        board.prediction_chart = charts.band(
            [q[0] for q in qs],
            [q[1] for q in qs],
            [q[2] for q in qs],
            labels=labels,
            lower=min(finite, default=0.0),
            upper=max(finite, default=1.0),
            title=f"Predicted value per block (median, p10–p90), last {len(hists)} blocks",
        )


def _distribution_charts(board: Dashboard, session: Session, model: MonitoredModel) -> None:
    spec = get_spec(session, model.reference_id) if model.reference_id is not None else None
    blocks = _block_counts(session, model, spec) if spec is not None else []
    for column, field_name in ((PREDICTION, "prediction"), (CONFIDENCE, "confidence")):
        reason = _empty_reason(
            field_name,
            reference=spec is not None,
            in_reference=spec is not None and column in spec.names,
            blocks=bool(blocks),
        ).replace("{name}", model.name)
        if column == PREDICTION:
            board.prediction_empty = reason
        else:
            board.confidence_empty = reason
    if spec is None or not blocks:
        return
    labels = [f"block {b} (to {ts:%m-%d %H:%M})" for b, _, ts in blocks]
    if PREDICTION in spec.names:
        _prediction_chart(board, [spec.histogram(PREDICTION, c) for _, c, _ in blocks], labels)
    if CONFIDENCE in spec.names:
        qs = [
            histogram_quantiles(spec.histogram(CONFIDENCE, c), (0.1, 0.5, 0.9))
            for _, c, _ in blocks
        ]
        if any(q[1] is not None for q in qs):
            board.confidence_chart = charts.band(
                [q[0] for q in qs],
                [q[1] for q in qs],
                [q[2] for q in qs],
                labels=labels,
                title=f"Confidence per block (median, p10–p90), last {len(blocks)} blocks",
            )


def ingest_volume(
    session: Session, model: MonitoredModel, now: dt.datetime, hours: int = VOLUME_HOURS
) -> list[tuple[dt.datetime, int]]:
    """Predictions per hour (by their timestamp) over the last ``hours`` hours."""
    latest = ingest.latest_ts(session, model.id)
    # timestamps are the deployed model's: a clock ahead of ours still shows its traffic
    end = max(now, latest) if latest is not None else now
    first = int(end.timestamp()) // 3600 - hours + 1
    counts = ingest.per_hour(session, model.id, dt.datetime.fromtimestamp(first * 3600, dt.UTC))
    return [
        (dt.datetime.fromtimestamp((first + i) * 3600, dt.UTC), counts.get(first + i, 0))
        for i in range(hours)
    ]


def model_dashboard(session: Session, *, model: MonitoredModel, now: dt.datetime) -> Dashboard:
    board = Dashboard(model=model)
    newest_first = drift.evaluations(session, model.id, limit=EVALUATIONS_SHOWN)
    board.evaluations = newest_first
    board.trends = feature_trends(list(reversed(newest_first)))
    board.incidents = incidents.listed(session, DriftIncident, model.id, limit=20)
    _distribution_charts(board, session, model)
    _performance_chart(board, session, model)
    volume = ingest_volume(session, model, now)
    board.volume_total = sum(n for _, n in volume)
    board.volume_chart = charts.bars(
        [float(n) for _, n in volume],
        labels=[f"{h:%m-%d %H}:00" for h, _ in volume],
        unit=" predictions",
        title=f"Predictions per hour, last {VOLUME_HOURS} hours",
        width=1200,
        height=150,
    )
    return board


def _interval(estimate: dict[str, Any] | None) -> charts.Interval | None:
    if estimate is None:
        return None
    return charts.Interval(estimate["value"], estimate.get("ci_low"), estimate.get("ci_high"))


def _performance_chart(board: Dashboard, session: Session, model: MonitoredModel) -> None:
    """The watched metric per window: estimated, audited, realized, reference, bound."""
    newest_first = performance.latest(session, model=model, count=WINDOWS_SHOWN)
    if not newest_first:
        return
    items = [item for item, _ in reversed(newest_first)]
    settings = performance.settings_of(model)
    metric = (settings.metric if settings else None) or performance.metric_names(model)[0]
    bound = next((v.bound for _, v in newest_first if v is not None and v.bound is not None), None)
    spans: list[charts.Span] = []
    for i, item in enumerate(items):
        iid = item["incident_id"]
        if iid is None:
            continue
        if spans and spans[-1].label == f"incident {iid}" and spans[-1].end == i - 1:
            spans[-1] = charts.Span(spans[-1].start, i, spans[-1].label)
        else:
            spans.append(charts.Span(i, i, f"incident {iid}"))
    labels = [
        f"{item['window_end']:%m-%d %H:%M}" if item["window_end"] else f"block {item['last_block']}"
        for item in items
    ]
    board.performance_metric = metric
    board.performance_windows = list(reversed(items))
    board.performance_incidents = incidents.listed(session, PerformanceIncident, model.id, limit=20)
    board.performance_chart = charts.performance(
        estimated=[_interval(item["metrics"][metric]["estimated"]) for item in items],
        audited=[_interval(item["metrics"][metric]["audited"]) for item in items],
        realized=[_interval(item["metrics"][metric]["realized"]) for item in items],
        reference=items[-1]["reference"].get(metric),
        bound=bound,
        spans=spans,
        labels=labels,
        metric=metric,
        title=f"{metric} per window: estimated (band), audited (points with 95% intervals), "
        "realized, reference and bound",
    )


@dataclass
class QueuePanels:
    """The review side of a model's dashboard (from the queue's own summary)."""

    summary: QueueSummary
    opened_chart: Markup
    finished_chart: Markup
    opened_total: int
    finished_total: int


def _hourly(rows: Sequence[tuple[dt.datetime, int]], first: dt.datetime, hours: int) -> list[int]:
    counts = [0] * hours
    for hour, n in rows:
        i = int((hour - first).total_seconds() // 3600)
        if 0 <= i < hours:
            counts[i] += int(n)
    return counts


def queue_panels(
    session: Session, *, model: MonitoredModel, now: dt.datetime, hours: int = VOLUME_HOURS
) -> QueuePanels:
    """Queue depth and oldest age, tickets opened and finished per hour, reviewers' agreement."""
    summary = views.summary(session, now=now, model_id=model.id, hours=hours)
    first = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=hours - 1)
    opened_rows = queue.opened_per_hour(session, model.id, since=first)
    opened = _hourly([(h, int(n or 0)) for h, n in opened_rows], first, hours)
    finished_at = queue.finished_times(session, model.id, since=first)
    finished = _hourly(
        [(t.replace(minute=0, second=0, microsecond=0), 1) for t in finished_at if t], first, hours
    )
    labels = [f"{first + dt.timedelta(hours=i):%m-%d %H}:00" for i in range(hours)]
    return QueuePanels(
        summary=summary,
        opened_chart=charts.bars(
            [float(n) for n in opened],
            labels=labels,
            unit=" tickets",
            title=f"Tickets opened per hour, last {hours} hours",
            height=90,
        ),
        finished_chart=charts.bars(
            [float(n) for n in finished],
            labels=labels,
            unit=" tickets",
            title=f"Tickets resolved or dismissed per hour, last {hours} hours",
            height=90,
        ),
        opened_total=sum(opened),
        finished_total=sum(finished),
    )
