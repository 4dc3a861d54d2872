"""Windows of performance: read as sums of blocks, judged against the model's settings.

A window's realized, audited and estimated values come from the sums of its
blocks' parts (:mod:`app.performance.blocks`, :mod:`app.performance.labels`):
one read of the parts of the blocks the page covers, whatever the rows behind
them, so a window costs O(blocks), flat in its size.

**Which estimate judges a window** (``degraded``): the best available one for the
watched metric: *realized* when the window's ground truth covers at least
``min_coverage`` of its rows with at least ``min_labels`` labels; else *audited*
when reviewers' probability-sampled labels number at least ``min_labels`` (the
audited estimate exists for accuracy, MAE and RMSE); else *estimated* (CBPE or
DLE). The window is degraded when that estimate's whole 95% interval is worse
than the bound: below the floor (``min``, or the reference's value minus
``max_drop``, whichever is higher) or, for errors, above the ceiling (``max``, or
the reference's value plus ``max_drop``, whichever is lower).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import String, delete, func, select, type_coerce
from sqlalchemy.orm import Session

from app.performance.blocks import AUDITED, DRIFT_SAMPLE, ESTIMATED, POPULATION, REALIZED
from app.performance.fitting import Fitted, fitted
from app.performance.tables import PerformanceIncident, PerformancePart
from app.schemas import HIGHER_IS_BETTER, PerformanceSettings
from monitors.performance import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    AuditSums,
    Estimate,
    EstimatedClassification,
    EstimatedRegression,
    LabelledClassification,
    LabelledRegression,
    disagree,
    metric,
)
from monitors.window import WindowSpec
from storage.tables import MonitoredModel

SOURCES = ("realized", "audited", "estimated")


@dataclass
class BlockSums:
    """A window's sums, by kind; ``None`` where nothing was added."""

    population: AuditSums | None = None
    audited: AuditSums | None = None
    drift_sample: AuditSums | None = None
    realized: Any = None
    estimated: dict[int, Any] = field(default_factory=dict)  # by reference id
    first_ts: dt.datetime | None = None
    last_ts: dt.datetime | None = None

    @property
    def rows(self) -> int:
        return 0 if self.population is None else int(self.population.population)


def _plus(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _decode(task: str, kind: str, data: dict[str, Any]) -> Any:
    if kind in (POPULATION, AUDITED, DRIFT_SAMPLE):
        return AuditSums.from_json(data)
    if kind == REALIZED:
        cls: Any = LabelledClassification if task == "classification" else LabelledRegression
        return cls.from_json(data)
    cls = EstimatedClassification if task == "classification" else EstimatedRegression
    return cls.from_json(data)


@dataclass(frozen=True)
class _Part:
    block: int
    kind: str
    reference_id: int
    sums: Any  # decoded: AuditSums, Labelled*/Estimated* sums
    first_ts: dt.datetime | None
    last_ts: dt.datetime | None


class _DecodedParts:
    """Decoded part sums by (database, model, part id, kind, block, created_at), least
    recently used out.

    A part row is never updated: ingest and labels insert new rows, compaction
    inserts merged rows and deletes the old ones. So a decoded part stays valid
    for as long as its row exists, and a window read that finds its parts here
    skips fetching and decoding their JSON (the bulk of a read). SQLite reuses
    the highest id after its row is deleted: compaction inserts before it deletes,
    and the rest of the key guards against any other reuse.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: tuple[Any, ...], sums: Any) -> None:
        size = _nbytes(sums)
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (sums, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def _nbytes(sums: Any) -> int:
    """About what a decoded part holds in memory."""
    if isinstance(sums, AuditSums):
        return 200 + sum(int(v.nbytes) + 100 for v in sums.strata.values())
    return 300 + sum(int(v.nbytes) for v in vars(sums).values() if isinstance(v, np.ndarray))


PART_CACHE_BYTES = 128 * 1024 * 1024
_parts = _DecodedParts(PART_CACHE_BYTES)
_IN_CHUNK = 500  # ids per IN (...) when fetching the parts not cached


def _decoded_sums(session: Session, model: MonitoredModel, rows: Sequence[Any]) -> dict[int, Any]:
    """Each part's decoded sums by part id: from the cache (keyed by the database, the
    part and its creation time), the others fetched in chunks, decoded and cached."""
    database = session.get_bind().engine.url.render_as_string()
    decoded: dict[int, Any] = {}
    missing: list[int] = []

    def key(row: Any) -> tuple[Any, ...]:
        return (database, model.id, int(row.id), row.kind, int(row.block), row.created_at)

    for row in rows:
        hit = _parts.get(key(row))
        if hit is None:
            missing.append(int(row.id))
        else:
            decoded[int(row.id)] = hit
    if missing:
        by_id = {int(row.id): row for row in rows}
        for i in range(0, len(missing), _IN_CHUNK):
            fetched = session.execute(
                select(PerformancePart.id, PerformancePart.sums).where(
                    PerformancePart.id.in_(missing[i : i + _IN_CHUNK])
                )
            )
            for pid, data in fetched:
                row = by_id[int(pid)]
                sums = _decode(model.task, row.kind, data)
                decoded[int(pid)] = sums
                _parts.put(key(row), sums)
    return decoded


def read_parts(
    session: Session, *, model: MonitoredModel, blocks: range, model_version: str | None
) -> dict[int, list[_Part]]:
    """The parts of each block in ``blocks``, decoded.

    One read of the parts' keys; their sums come from the decoded-part cache,
    and only the parts not seen before are fetched and decoded (a second query).
    """
    where = [
        PerformancePart.model_id == model.id,
        PerformancePart.block >= blocks.start,
        PerformancePart.block < blocks.stop,
    ]
    if model_version is not None:
        where.append(PerformancePart.model_version == model_version)
    # created_at as the driver gives it (a cache key, never parsed by SQLAlchemy: parsing a
    # timestamp per part was most of a read on SQLite); timestamps once per block
    rows = session.execute(
        select(
            PerformancePart.id,
            PerformancePart.block,
            PerformancePart.kind,
            PerformancePart.reference_id,
            type_coerce(PerformancePart.created_at, String).label("created_at"),
        ).where(*where)
    ).all()
    spans = {
        int(block): (first, last)
        for block, first, last in session.execute(
            select(
                PerformancePart.block,
                func.min(PerformancePart.first_ts),
                func.max(PerformancePart.last_ts),
            )
            .where(*where)
            .group_by(PerformancePart.block)
        )
    }
    decoded = _decoded_sums(session, model, rows)
    out: dict[int, list[_Part]] = defaultdict(list)
    for row in rows:
        sums = decoded.get(int(row.id))
        if sums is None:  # deleted between the two reads (compaction): merged into a new part
            continue
        first, last = spans.get(int(row.block), (None, None))
        out[int(row.block)].append(
            _Part(int(row.block), row.kind, int(row.reference_id or 0), sums, first, last)
        )
    return dict(out)


def sum_audit(items: Sequence[AuditSums]) -> AuditSums:
    """Many AuditSums added at once: one accumulation per stratum."""
    strata: dict[str, Any] = {}
    for item in items:
        for name, values in item.strata.items():
            have = strata.get(name)
            strata[name] = values.copy() if have is None else have + values
    return AuditSums(strata)


def window_sums(task: str, parts: Sequence[_Part]) -> BlockSums:
    """A window's sums from its blocks' decoded parts: each kind's added at once."""
    docs: dict[str, list[Any]] = defaultdict(list)
    estimated: dict[int, list[Any]] = defaultdict(list)
    for part in parts:
        if part.kind == ESTIMATED:
            estimated[part.reference_id].append(part.sums)
        else:
            docs[part.kind].append(part.sums)
    realized_cls: Any = LabelledClassification if task == "classification" else LabelledRegression
    estimated_cls: Any = (
        EstimatedClassification if task == "classification" else EstimatedRegression
    )
    firsts = [p.first_ts for p in parts if p.first_ts is not None]
    lasts = [p.last_ts for p in parts if p.last_ts is not None]
    return BlockSums(
        population=sum_audit(docs[POPULATION]) if docs[POPULATION] else None,
        audited=sum_audit(docs[AUDITED]) if docs[AUDITED] else None,
        drift_sample=sum_audit(docs[DRIFT_SAMPLE]) if docs[DRIFT_SAMPLE] else None,
        realized=realized_cls.sum_all(docs[REALIZED]) if docs[REALIZED] else None,
        estimated={ref: estimated_cls.sum_all(d) for ref, d in estimated.items()},
        first_ts=min(firsts) if firsts else None,
        last_ts=max(lasts) if lasts else None,
    )


def metric_names(model: MonitoredModel) -> tuple[str, ...]:
    if model.task == "regression":
        return REGRESSION_METRICS
    binary = len(model.labels or ()) == 2
    return tuple(n for n in CLASSIFICATION_METRICS if binary or n != "roc_auc")


def settings_of(model: MonitoredModel) -> PerformanceSettings | None:
    return PerformanceSettings(**model.performance) if model.performance else None


def _estimate_json(est: Estimate | None, **extra: Any) -> dict[str, Any] | None:
    if est is None:
        return None
    return {**est.to_dict(), **extra}


def _estimated_sums(window: BlockSums, current: int | None) -> Any:
    """The label-free sums: those made under the current reference's calibration when the
    window has any, else under the latest other (sums of different calibrations do not add)."""
    if not window.estimated:
        return None
    if current is not None and current in window.estimated:
        return window.estimated[current]
    return window.estimated[max(window.estimated)]


@dataclass(frozen=True)
class Judgement:
    """Which estimate judged the window, against which bound, and the verdict."""

    metric: str
    source: str | None
    value: float | None
    bound: float | None
    degraded: bool


def bound_of(settings: PerformanceSettings, reference: dict[str, float | None]) -> float | None:
    """The floor (higher-is-better metrics) or ceiling (errors) a window is judged against."""
    assert settings.metric is not None
    ref = reference.get(settings.metric)
    if settings.metric in HIGHER_IS_BETTER:
        floors = [settings.min]
        if settings.max_drop is not None and ref is not None:
            floors.append(ref - settings.max_drop)
        present = [f for f in floors if f is not None]
        return max(present) if present else None
    ceilings = [settings.max]
    if settings.max_drop is not None and ref is not None:
        ceilings.append(ref + settings.max_drop)
    present = [c for c in ceilings if c is not None]
    return min(present) if present else None


def choose(
    settings: PerformanceSettings, estimates: dict[str, Estimate | None], coverage: float
) -> tuple[str | None, Estimate | None]:
    """The best available estimate: realized, audited, estimated (see the module's doc)."""
    realized, audited = estimates.get("realized"), estimates.get("audited")
    enough = realized is not None and realized.n >= settings.min_labels
    if realized is not None and enough and coverage >= settings.min_coverage:
        return "realized", realized
    if audited is not None and audited.n >= settings.min_labels:
        return "audited", audited
    if estimates.get("estimated") is not None:
        return "estimated", estimates["estimated"]
    return None, None


def judge(
    settings: PerformanceSettings | None,
    estimates: dict[str, Estimate | None],
    coverage: float,
    reference: dict[str, float | None],
) -> Judgement | None:
    if settings is None or settings.metric is None:
        return None
    bound = bound_of(settings, reference)
    source, est = choose(settings, estimates, coverage)
    degraded = False
    if est is not None and bound is not None and est.ci_low is not None and est.ci_high is not None:
        if settings.metric in HIGHER_IS_BETTER:
            degraded = est.ci_high < bound
        else:
            degraded = est.ci_low > bound
    return Judgement(settings.metric, source, None if est is None else est.value, bound, degraded)


def window_item(
    model: MonitoredModel,
    window: BlockSums,
    *,
    blocks: range,
    spec: WindowSpec,
    fit: Fitted | None,
    model_version: str | None,
) -> tuple[dict[str, Any], Judgement | None]:
    """One window as GET /performance shows it, and its judgement."""
    rows = window.rows
    audit = _plus(window.population, window.audited)
    estimated = _estimated_sums(window, fit.reference_id if fit else None)
    reference = dict(fit.metrics) if fit else {}
    settings = settings_of(model)
    metrics, judged = _metrics(model, window, audit, estimated)
    watched = (settings.metric if settings else None) or metric_names(model)[0]
    estimates = judged.get(watched, {})
    realized_n = estimates.get("realized")
    coverage = 0.0 if realized_n is None or not rows else realized_n.n / rows
    verdict = judge(settings, estimates, coverage, reference)
    labelled = estimates.get("realized") or estimates.get("audited")
    start, end = _bounds(spec, blocks, window)
    item = {
        "window_start": start,
        "window_end": end,
        "rows": rows,
        "model_version": model_version,
        "metrics": metrics,
        "reference": {k: reference.get(k) for k in metric_names(model)},
        "degraded": bool(verdict and verdict.degraded),
        "concept_shift_suspected": bool(disagree(labelled, estimates.get("estimated"))),
        "incident_id": None,
        "first_block": blocks.start,
        "last_block": blocks.stop - 1,
        "judged_by": None
        if verdict is None
        else {
            "metric": verdict.metric,
            "source": verdict.source,
            "value": verdict.value,
            "bound": verdict.bound,
        },
        "audited_labels": 0 if window.audited is None else int(window.audited.labels),
        "drift_sample_labels": 0
        if window.drift_sample is None
        else int(window.drift_sample.labels),
    }
    return item, verdict


def _metrics(
    model: MonitoredModel, window: BlockSums, audit: Any, estimated: Any
) -> tuple[dict[str, Any], dict[str, dict[str, Estimate | None]]]:
    """Each metric's realized, audited and estimated value, as shown and as judged."""
    rows = window.rows
    metrics: dict[str, Any] = {}
    judged: dict[str, dict[str, Estimate | None]] = {}
    for name in metric_names(model):
        realized = metric(window.realized, name) if window.realized is not None else None
        audited = metric(audit, name) if audit is not None and window.audited is not None else None
        est = metric(estimated, name) if estimated is not None else None
        judged[name] = {"realized": realized, "audited": audited, "estimated": est}
        coverage = 0.0 if realized is None or not rows else realized.n / rows
        metrics[name] = {
            "realized": _estimate_json(realized, coverage=round(coverage, 6)),
            "audited": _estimate_json(audited),
            "estimated": _estimate_json(est),
        }
    return metrics, judged


def _bounds(
    spec: WindowSpec, blocks: range, window: BlockSums
) -> tuple[dt.datetime | None, dt.datetime | None]:
    if spec.kind == "time":
        start, _ = spec.block_bounds(blocks.start)
        _, end = spec.block_bounds(blocks.stop - 1)
        return (
            dt.datetime.fromtimestamp(start, dt.UTC),
            dt.datetime.fromtimestamp(end, dt.UTC),
        )
    return window.first_ts, window.last_ts


def last_blocks(
    session: Session,
    *,
    model: MonitoredModel,
    before: int | None,
    model_version: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int,
) -> list[int]:
    """The latest blocks that saw traffic (each ends one window), newest first; with
    ``start``/``end``, only blocks with records in [start, end)."""
    stmt = (
        select(PerformancePart.block)
        .where(PerformancePart.model_id == model.id, PerformancePart.kind == POPULATION)
        .group_by(PerformancePart.block)
        .order_by(PerformancePart.block.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(PerformancePart.block < before)
    if model_version is not None:
        stmt = stmt.where(PerformancePart.model_version == model_version)
    if start is not None:
        stmt = stmt.having(func.max(PerformancePart.last_ts) >= start)
    if end is not None:
        stmt = stmt.having(func.min(PerformancePart.first_ts) < end)
    return [int(b) for b in session.scalars(stmt)]


def windows(
    session: Session,
    *,
    model: MonitoredModel,
    last: Sequence[int],
    model_version: str | None,
) -> list[tuple[dict[str, Any], Judgement | None]]:
    """The windows ending at each of ``last`` blocks: one read of all their blocks' parts."""
    if not last:
        return []
    spec = WindowSpec.parse(model.window)
    ranges = [spec.window_blocks(last_block=b) for b in last]
    covered = range(min(r.start for r in ranges), max(r.stop for r in ranges))
    per_block = read_parts(session, model=model, blocks=covered, model_version=model_version)
    fit = fitted(session, model.reference_id) if model.reference_id else None
    out = []
    for blocks in ranges:
        parts = [p for b in blocks for p in per_block.get(b, ())]
        out.append(
            window_item(
                model,
                window_sums(model.task, parts),
                blocks=blocks,
                spec=spec,
                fit=fit,
                model_version=model_version,
            )
        )
    return out


def attach_incidents(
    session: Session, model: MonitoredModel, items: Iterable[dict[str, Any]]
) -> None:
    """Set each window's ``incident_id``: the performance incident whose blocks cover it."""
    incidents = session.execute(
        select(
            PerformanceIncident.id,
            PerformanceIncident.first_block,
            PerformanceIncident.last_block,
            PerformanceIncident.status,
        ).where(PerformanceIncident.model_id == model.id)
    ).all()
    for item in items:
        b = item["last_block"]
        for iid, first, last, status in incidents:
            if first <= b and (b <= last or status == "open"):
                item["incident_id"] = int(iid)
                break


def latest(
    session: Session, *, model: MonitoredModel, count: int
) -> list[tuple[dict[str, Any], Judgement | None]]:
    """The model's latest ``count`` windows, newest first (what a dashboard shows)."""
    last = last_blocks(
        session, model=model, before=None, model_version=None, start=None, end=None, limit=count
    )
    out = windows(session, model=model, last=last, model_version=None)
    attach_incidents(session, model, [item for item, _ in out])
    return out


@dataclass(frozen=True)
class AuditNow:
    """The current window's audited estimate, as a reviewer sees the effect of their labels."""

    model: str
    metric: str
    labels: int
    value: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_high - self.ci_low


def audit_now(session: Session, *, model: MonitoredModel) -> AuditNow | None:
    """The audited estimate of the model's latest window (None: no traffic yet)."""
    found = latest(session, model=model, count=1)
    if not found:
        return None
    item, _ = found[0]
    metric_name = "accuracy" if model.task == "classification" else "mae"
    audited = item["metrics"][metric_name]["audited"] or {}
    return AuditNow(
        model=model.name,
        metric=metric_name,
        labels=int(item["audited_labels"]),
        value=audited.get("value"),
        ci_low=audited.get("ci_low"),
        ci_high=audited.get("ci_high"),
    )


# --------------------------------------------------------------------------- compaction
COMPACT_GROUPS = 500


def _merge(session: Session, model: MonitoredModel, parts: list[PerformancePart]) -> None:
    """One part in place of ``parts`` (one block, version, kind and reference): their sums
    added, their time span, the newest creation time."""
    first = parts[0]
    total: Any = None
    for part in parts:
        total = _plus(total, _decode(model.task, first.kind, part.sums))
    firsts = [p.first_ts for p in parts if p.first_ts is not None]
    lasts = [p.last_ts for p in parts if p.last_ts is not None]
    session.add(
        PerformancePart(
            model_id=model.id,
            block=first.block,
            model_version=first.model_version,
            kind=first.kind,
            reference_id=first.reference_id,
            sums=total.to_json(),
            first_ts=min(firsts) if firsts else None,
            last_ts=max(lasts) if lasts else None,
            created_at=max(p.created_at for p in parts),
        )
    )
    # inserted before the old parts go: the newest id stays alive, so SQLite never
    # hands a deleted part's id to a new one (decoded parts are cached by id)
    session.flush()
    session.execute(delete(PerformancePart).where(PerformancePart.id.in_([p.id for p in parts])))


def compact(session: Session, *, model: MonitoredModel, before_block: int) -> int:
    """Merge the parts of finished blocks into one row per block, version, kind and
    reference; returns the parts removed.

    Only blocks before ``before_block`` (finished: ingest adds nothing there, labels
    may) are touched, and only the parts read here are deleted, so a concurrent
    writer's part is never lost: it is merged on a later step.
    """
    key = (
        PerformancePart.block,
        PerformancePart.model_version,
        PerformancePart.kind,
        PerformancePart.reference_id,
    )
    groups = session.execute(
        select(*key)
        .where(PerformancePart.model_id == model.id, PerformancePart.block < before_block)
        .group_by(*key)
        .having(func.count() > 1)
        .limit(COMPACT_GROUPS)
    ).all()
    removed = 0
    for block, version, kind, reference_id in groups:
        stmt = select(PerformancePart).where(
            PerformancePart.model_id == model.id,
            PerformancePart.block == block,
            PerformancePart.model_version == version,
            PerformancePart.kind == kind,
        )
        stmt = stmt.where(
            PerformancePart.reference_id.is_(None)
            if reference_id is None
            else PerformancePart.reference_id == reference_id
        )
        parts = list(session.scalars(stmt))
        if len(parts) < 2:
            continue
        _merge(session, model, parts)
        removed += len(parts)
    return removed
