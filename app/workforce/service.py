"""The queue measured and forecast: rates, handle times, reviewers, backlog, breaches, staffing.

Reads through :mod:`app.workforce.repository`; the maths is
:mod:`monitors.queueing` (M/M/c with priorities: the fluid path for breach
times and staffing, a Monte Carlo of the same queue for the backlog band).
Reviewers serve every model's queue, so the forecast is of the whole queue;
``model``/``kind`` narrow what is listed, not the reviewers assumed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ingest.value import labels_wanted
from app.settings import Settings
from app.workforce import repository
from app.workforce.schemas import (
    Arrivals,
    BacklogPoint,
    Breach,
    FirstClaim,
    Forecast,
    HandleTime,
    LabelBudget,
    PlanHour,
    PriorityBreach,
    Reviewer,
    Throughput,
    Workforce,
)
from exceptions_queue import sampling, states
from monitors.queueing import (
    BacklogBand,
    FluidPath,
    PriorityClass,
    StaffingPlan,
    backlog_band,
    fluid_forecast,
    recent_rate,
    staffing_plan,
)
from storage.options import ModelOptions
from storage.tables import MonitoredModel

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)
PROFILE_WEEKS = 4
HORIZON_HOURS = 24
BACKLOG_HORIZONS = (1.0, 4.0, 24.0)
# the recent rate looks back this many DRIFTDESK_WORKFORCE_RECENT_SECONDS for a change of rate
LOOKBACK_SPANS = 4
# how far the recent rate may scale the hour-of-week profile (a surge, a quiet spell)
PROFILE_SCALE = (0.25, 4.0)
METHOD = (
    "M/M/c with non-preemptive priorities at the measured rates: a fluid path for breach "
    "times and staffing, a Monte Carlo of the same queue (400 paths) for the backlog band "
    "(10th-90th percentile); see docs/statistics.md"
)


def _hour(t: dt.datetime) -> dt.datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _how(t: dt.datetime) -> int:
    """Hour of the week, Monday 00:00 = 0."""
    return t.weekday() * 24 + t.hour


def _quantiles(values: Iterable[float]) -> tuple[float | None, float | None, float | None]:
    a = np.asarray(list(values), dtype=np.float64)
    if a.size == 0:
        return None, None, None
    return float(np.median(a)), float(np.quantile(a, 0.9)), float(a.mean())


def _seconds(start: dt.datetime | None, end: dt.datetime) -> float | None:
    if start is None:
        return None
    s = (end - start).total_seconds()
    return s if s >= 0 else None


@dataclass(frozen=True)
class Rates:
    """Arrival rates per (model id, kind): the recent one and the next 24 hours'."""

    recent: dict[tuple[int, str], float]
    next_24h: dict[tuple[int, str], tuple[float, ...]]
    basis: dict[tuple[int, str], str]


def _recent_rates(
    session: Session, *, now: dt.datetime, settings: Settings
) -> dict[tuple[int, str], float]:
    """Per model × kind, the arrival rate since its last change of rate (monitors.queueing's
    ``recent_rate``) within a look-back of four recent spans, else over the whole look-back."""
    lookback = LOOKBACK_SPANS * dt.timedelta(seconds=settings.workforce_recent_seconds)
    ages: dict[tuple[int, str], list[float]] = {}
    for m, k, created in repository.created_times_since(session, since=now - lookback):
        ages.setdefault((m, k), []).append((now - created) / HOUR)
    return {
        key: recent_rate(found, lookback=lookback / HOUR).per_hour for key, found in ages.items()
    }


def arrival_rates(session: Session, *, now: dt.datetime, settings: Settings) -> Rates:
    """Recent rate per model × kind; the hour-of-week profile's 24 h once a week of history exists."""
    recent = _recent_rates(session, now=now, settings=settings)
    first = repository.first_volume_hour(session)
    long_enough = {m for m, h in first.items() if now - h >= WEEK}
    profiles: dict[tuple[int, str], np.ndarray] = {}
    weeks: dict[int, int] = {}
    if long_enough:
        since = _hour(now) - PROFILE_WEEKS * WEEK
        for m in long_enough:
            span = min(now - max(first[m], since), PROFILE_WEEKS * WEEK)
            weeks[m] = max(1, int(span / WEEK))
        for m, k, hour, n in repository.hourly_opened(session, since=since):
            if m not in long_enough or hour >= _hour(now):
                continue  # the current hour is not complete
            profile = profiles.setdefault((m, k), np.zeros(7 * 24))
            profile[_how(hour)] += n
        for (m, _k), profile in profiles.items():
            profile /= weeks[m]
    next_24h: dict[tuple[int, str], tuple[float, ...]] = {}
    basis: dict[tuple[int, str], str] = {}
    for key in set(recent) | set(profiles):
        rate = recent.get(key, 0.0)
        found = profiles.get(key)
        if found is None:
            next_24h[key] = (rate,) * HORIZON_HOURS
            basis[key] = "recent"
            continue
        profile = found
        now_level = profile[_how(now)]
        scale = rate / now_level if now_level > 0 else 1.0
        scale = min(max(scale, PROFILE_SCALE[0]), PROFILE_SCALE[1])
        next_24h[key] = tuple(
            float(profile[_how(now + h * HOUR)] * scale) for h in range(HORIZON_HOURS)
        )
        next_24h[key] = (rate, *next_24h[key][1:])  # the current hour: what is arriving
        basis[key] = "hour_of_week"
    return Rates(recent, next_24h, basis)


def _class_name(model: str, kind: str) -> str:
    return f"{model}\x1f{kind}"


Listed = Callable[[int, str], bool]
NO_HANDLE_TIME = (
    "no ticket was finished in the last 24 hours, so the handle time is unknown; "
    "the forecast starts once reviewers have finished some tickets"
)


def workforce(
    session: Session,
    *,
    now: dt.datetime,
    settings: Settings,
    model: str | None = None,
    kind: str | None = None,
    band_runs: int = 400,
) -> Workforce:
    """Everything GET /v1/workforce returns."""
    names = repository.model_ids(session)
    rates = arrival_rates(session, now=now, settings=settings)
    active = repository.active_tickets(session)
    reviewers_seen = repository.active_reviewers(
        session, since=now - dt.timedelta(seconds=settings.workforce_active_seconds)
    )

    def listed(m: int, k: str) -> bool:
        return m in names and (model is None or names[m] == model) and (kind is None or k == kind)

    arrivals = _arrivals(rates, names, listed)
    tally = _Tally.of(repository.finished_since(session, since=now - DAY), listed, now)
    active_names = {r for r, m in reviewers_seen}
    listed_active = {r for r, m in reviewers_seen if model is None or names.get(m) == model}
    claims = repository.first_claims(session, since=now - DAY)

    forecast = _forecast_if_known(
        tally.all_handle,
        now=now,
        names=names,
        rates=rates,
        active=active,
        reviewers=len(active_names),
        settings=settings,
        listed=listed,
        band_runs=band_runs,
    )
    return Workforce(
        at=now,
        model=model,
        kind=kind,
        **_waiting_and_held(active, listed),
        arrivals_per_hour=sum(a.per_hour for a in arrivals),
        arrivals=arrivals,
        handle_times=tally.handle_times(),
        active_reviewers=len(listed_active),
        reviewers=tally.reviewers(
            sorted(set(tally.done_day) | listed_active), active_names, _agreement(session, now)
        ),
        throughput_per_hour=sum(tally.throughput.values()),
        throughput=tally.throughputs(names),
        time_to_first_claim=_first_claims(claims, names, listed),
        label_budgets=label_budgets(session, now=now, model=model),
        forecast=forecast,
        forecast_unavailable=NO_HANDLE_TIME if forecast is None else None,
    )


def label_budgets(
    session: Session, *, now: dt.datetime, model: str | None = None
) -> list[LabelBudget]:
    """Each active model's label budget in its current period (those with one)."""
    out = []
    stmt = select(MonitoredModel).where(MonitoredModel.status == "active")
    if model is not None:
        stmt = stmt.where(MonitoredModel.name == model)
    for m in session.scalars(stmt.order_by(MonitoredModel.name)):
        budget = sampling.Budget.of(ModelOptions(**(m.options or {})))
        if budget is None:
            continue
        considered, drawn = repository.budgeted_volume(
            session, model_id=m.id, since=budget.start(now), until=budget.end(now)
        )
        out.append(
            LabelBudget(
                model=m.name,
                period=budget.period,
                labels=budget.labels,
                period_start=budget.start(now),
                spent=sampling.spent(session, model_id=m.id, budget=budget, now=now),
                considered=considered,
                drawn=drawn,
                expected_later=sampling.expected_later(
                    session, model_id=m.id, budget=budget, now=now, arriving=0
                ),
                audit_raised=labels_wanted(session, m.id),
            )
        )
    return out


def _forecast_if_known(
    handle_seconds: list[float],
    *,
    now: dt.datetime,
    names: dict[int, str],
    rates: Rates,
    active: list[repository.Active],
    reviewers: int,
    settings: Settings,
    listed: Listed,
    band_runs: int,
) -> Forecast | None:
    """The forecast, when the last day's finished tickets give a handle time."""
    if not handle_seconds or sum(handle_seconds) <= 0:
        return None
    return _forecast(
        now=now,
        names=names,
        rates=rates,
        active=active,
        reviewers=reviewers,
        mean_handle_seconds=float(np.mean(handle_seconds)),
        target=settings.workforce_sla_target,
        listed=listed,
        band_runs=band_runs,
    )


def _agreement(session: Session, now: dt.datetime) -> dict[str, tuple[int, int]]:
    """Each reviewer's second reviews of the last day that agreed, and all of them."""
    return {r: (a, n) for r, a, n in repository.agreement(session, since=now - DAY)}


def _arrivals(rates: Rates, names: dict[int, str], listed: Listed) -> list[Arrivals]:
    """The expected tickets per hour of each listed model and kind, and on what basis."""
    return [
        Arrivals(
            model=names[m],
            kind=k,
            per_hour=rates.next_24h[(m, k)][0],
            recent_per_hour=rates.recent.get((m, k), 0.0),
            basis="hour_of_week" if rates.basis[(m, k)] == "hour_of_week" else "recent",
            next_24h=list(rates.next_24h[(m, k)]),
        )
        for (m, k) in sorted(rates.next_24h, key=lambda x: (names.get(x[0], ""), x[1]))
        if listed(m, k)
    ]


@dataclass
class _Tally:
    """The last day's finished tickets, counted: handle times per kind and reviewer, tickets
    per reviewer (hour, day), per model and kind (hour), and every handle time (all models)."""

    handle: dict[str, list[float]]
    per_reviewer: dict[str, list[float]]
    done_hour: dict[str, int]
    done_day: dict[str, int]
    throughput: dict[tuple[int, str], int]
    all_handle: list[float]

    @classmethod
    def of(
        cls, finished: Iterable[repository.Finished], listed: Listed, now: dt.datetime
    ) -> _Tally:
        tally = cls(
            defaultdict(list),
            defaultdict(list),
            defaultdict(int),
            defaultdict(int),
            defaultdict(int),
            [],
        )
        for f in finished:
            seconds = _seconds(f.claimed_at, f.finished_at)
            if seconds is not None:
                tally.all_handle.append(seconds)
            if not listed(f.model_id, f.kind):
                continue
            tally.done_day[f.reviewer] += 1
            if f.finished_at >= now - HOUR:
                tally.done_hour[f.reviewer] += 1
                tally.throughput[(f.model_id, f.kind)] += 1
            if seconds is not None:
                tally.handle[f.kind].append(seconds)
                tally.per_reviewer[f.reviewer].append(seconds)
        return tally

    def handle_times(self) -> list[HandleTime]:
        out = []
        for k in sorted(self.handle):
            med, p90, mean = _quantiles(self.handle[k])
            out.append(
                HandleTime(
                    kind=k,
                    finished=len(self.handle[k]),
                    median_seconds=med,
                    p90_seconds=p90,
                    mean_seconds=mean,
                )
            )
        return out

    def throughputs(self, names: dict[int, str]) -> list[Throughput]:
        """Tickets finished in the last hour per listed model and kind."""
        return [
            Throughput(model=names[m], kind=k, finished_last_hour=n)
            for (m, k), n in sorted(
                self.throughput.items(), key=lambda x: (names[x[0][0]], x[0][1])
            )
        ]

    def reviewers(
        self, names: Iterable[str], active: set[str], agree: dict[str, tuple[int, int]]
    ) -> list[Reviewer]:
        out = []
        for r in names:
            med, p90, _ = _quantiles(self.per_reviewer.get(r, []))
            a, n = agree.get(r, (0, 0))
            out.append(
                Reviewer(
                    name=r,
                    active=r in active,
                    finished_last_hour=self.done_hour.get(r, 0),
                    finished_24h=self.done_day.get(r, 0),
                    median_handle_seconds=med,
                    p90_handle_seconds=p90,
                    second_reviews=n,
                    agreement=a / n if n else None,
                )
            )
        return out


def _first_claims(
    claims: Iterable[tuple[int, str, dt.datetime, dt.datetime]],
    names: dict[int, str],
    listed: Listed,
) -> list[FirstClaim]:
    """How long listed tickets waited for their first claim, per model and kind."""
    first_claim: dict[tuple[int, str], list[float]] = defaultdict(list)
    for m, k, created, claimed in claims:
        if listed(m, k):
            first_claim[(m, k)].append((claimed - created).total_seconds())
    out = []
    for m, k in sorted(first_claim, key=lambda x: (names[x[0]], x[1])):
        med, p90, _ = _quantiles(first_claim[(m, k)])
        out.append(
            FirstClaim(
                model=names[m],
                kind=k,
                claimed=len(first_claim[(m, k)]),
                median_seconds=med,
                p90_seconds=p90,
            )
        )
    return out


def _queue_classes(
    *,
    now: dt.datetime,
    names: dict[int, str],
    rates: Rates,
    active: list[repository.Active],
    savable_only: bool = False,
) -> tuple[list[PriorityClass], int]:
    """One priority class per model × kind, with its waiting tickets; and the tickets held.

    With ``savable_only``, tickets already past their SLA are left out (nothing can
    save them; the forecast then says when the next one breaches).
    """
    keys = {(m, k) for (m, k) in rates.next_24h if m in names}
    keys |= {(t.model_id, t.kind) for t in active if t.model_id in names}
    ages: dict[tuple[int, str], list[float]] = defaultdict(list)
    busy = 0
    for t in active:
        if t.model_id not in names:
            continue
        if t.status == "claimed":
            busy += 1
            continue
        sla_h = states.sla(states.priority_of(t.kind)).total_seconds() / 3600
        # the age measured against the ticket's own due time (fixed at its creation)
        age = max(0.0, sla_h - (t.due_at - now).total_seconds() / 3600)
        if savable_only and age >= sla_h:
            continue
        ages[(t.model_id, t.kind)].append(age)
    classes = []
    for m, k in sorted(keys, key=lambda x: (names[x[0]], x[1])):
        priority = states.priority_of(k)
        classes.append(
            PriorityClass(
                name=_class_name(names[m], k),
                priority=priority,
                sla=states.sla(priority).total_seconds() / 3600,
                arrival_rates=rates.next_24h.get((m, k), (0.0,)),
                waiting_ages=tuple(ages.get((m, k), ())),
            )
        )
    return classes, busy


def _plan(
    classes: list[PriorityClass], mu: float, reviewers: int, busy: int, target: float
) -> StaffingPlan:
    return staffing_plan(
        classes,
        service_rate=mu,
        servers=reviewers,
        busy=float(busy),
        horizon=HORIZON_HOURS,
        target=target,
    )


@dataclass(frozen=True)
class StaffingRisk:
    """A model's first forecast SLA breach within the lead time, and the staffing that holds it."""

    model: str
    kind: str
    sla_hours: float
    in_minutes: float
    already_waiting: bool  # the ticket exists now (else it is yet to arrive)
    reviewers: int
    needed: int


def staffing_risks(
    session: Session, *, now: dt.datetime, settings: Settings
) -> dict[str, StaffingRisk]:
    """Per model: the earliest breach the forecast sees within the lead time (absent: none).

    Tickets already late are left out: ``queue.sla`` reports those; this is about the
    next ones. No forecast (no handle time measured yet) means no risk reported.
    """
    names = repository.model_ids(session)
    finished = repository.finished_since(session, since=now - DAY)
    handle = [x for f in finished if (x := _seconds(f.claimed_at, f.finished_at)) is not None]
    if not handle or sum(handle) <= 0:
        return {}
    mu = 3600.0 / max(float(np.mean(handle)), 1.0)
    rates = arrival_rates(session, now=now, settings=settings)
    active = repository.active_tickets(session)
    since = now - dt.timedelta(seconds=settings.workforce_active_seconds)
    reviewers = len({r for r, _ in repository.active_reviewers(session, since=since)})
    classes, busy = _queue_classes(
        now=now, names=names, rates=rates, active=active, savable_only=True
    )
    busy = min(busy, reviewers)
    lead = settings.workforce_lead_time_seconds / 3600
    path = fluid_forecast(
        classes, service_rate=mu, servers=reviewers, busy=float(busy), horizon=max(lead, 1.0) + 0.1
    )
    risks: dict[str, StaffingRisk] = {}
    at_risk = [
        (hours, cls)
        for cls in classes
        if (hours := path.breach[cls.name]) is not None and hours <= lead
    ]
    if not at_risk:
        return risks
    plan = _plan(classes, mu, reviewers, busy, settings.workforce_sla_target)
    for hours, cls in sorted(at_risk, key=lambda x: x[0]):
        model, kind = cls.name.split("\x1f")
        if model in risks:
            continue
        created = path.breach_created[cls.name]
        risks[model] = StaffingRisk(
            model=model,
            kind=kind,
            sla_hours=cls.sla,
            in_minutes=hours * 60,
            already_waiting=created is not None and created <= 0,
            reviewers=reviewers,
            needed=max(plan.now, reviewers + 1),
        )
    return risks


def _forecast(
    *,
    now: dt.datetime,
    names: dict[int, str],
    rates: Rates,
    active: list[repository.Active],
    reviewers: int,
    mean_handle_seconds: float,
    target: float,
    listed: Callable[[int, str], bool],
    band_runs: int,
) -> Forecast:
    mu = 3600.0 / max(mean_handle_seconds, 1.0)
    classes, busy = _queue_classes(now=now, names=names, rates=rates, active=active)
    busy = min(busy, reviewers)
    total_rates = [sum(c.rate_at(h) for c in classes) for h in range(HORIZON_HOURS)] or [0.0]
    path = fluid_forecast(
        classes, service_rate=mu, servers=reviewers, busy=float(busy), horizon=HORIZON_HOURS
    )
    band = backlog_band(
        arrival_rates=total_rates,
        service_rate=mu,
        servers=reviewers,
        waiting=sum(len(c.waiting_ages) for c in classes),
        busy=busy,
        horizons=tuple(float(h) for h in range(1, HORIZON_HOURS + 1)),
        runs=band_runs,
    )
    band_at = {h: i for i, h in enumerate(band.horizons)}
    plan = _plan(classes, mu, reviewers, busy, target)
    breaches, by_priority = _breaches(classes, path, now=now, names=names, listed=listed)
    return Forecast(
        method=METHOD,
        reviewers=reviewers,
        busy=busy,
        service_rate_per_hour=mu,
        capacity_per_hour=reviewers * mu,
        backlog=[_band_point(band, band_at, now, h) for h in BACKLOG_HORIZONS],
        path=_hourly_path(path, band, band_at, now),
        breaches=breaches,
        breaches_by_priority=[
            PriorityBreach(
                priority=p,
                sla_hours=sla_h,
                breach_at=None if hours is None else now + dt.timedelta(hours=hours),
                in_minutes=None if hours is None else round(hours * 60, 1),
            )
            for p, (sla_h, hours) in sorted(by_priority.items(), reverse=True)
        ],
        reviewers_needed_now=plan.now,
        holds_sla=plan.holds_now,
        plan=_plan_hours(plan, total_rates, now=now, capacity=reviewers * mu),
    )


def _hourly_path(
    path: FluidPath, band: BacklogBand, band_at: dict[float, int], now: dt.datetime
) -> list[BacklogPoint]:
    """The fluid forecast's backlog at each whole hour ahead, in the Monte Carlo band."""
    hour_points = np.arange(0, HORIZON_HOURS + 1, dtype=np.float64)
    fluid_hourly = np.interp(hour_points, path.times, path.waiting)
    return [
        BacklogPoint(
            hours=float(h),
            at=now + dt.timedelta(hours=float(h)),
            expected=float(w),
            low=float(band.low[band_at[float(h)]]) if h > 0 else float(w),
            high=float(band.high[band_at[float(h)]]) if h > 0 else float(w),
        )
        for h, w in zip(hour_points, fluid_hourly, strict=True)
    ]


def _waiting_and_held(active: Iterable[repository.Active], listed: Listed) -> dict[str, int]:
    """Listed tickets waiting (open) and held (claimed) now."""
    mine = [t.status for t in active if listed(t.model_id, t.kind)]
    return {"waiting": mine.count("open"), "held": mine.count("claimed")}


def _plan_hours(
    plan: StaffingPlan, total_rates: list[float], *, now: dt.datetime, capacity: float
) -> list[PlanHour]:
    """Reviewers needed per hour ahead, beside the hour's expected arrivals."""
    return [
        PlanHour(
            hour=_hour(now) + h * HOUR,
            arrivals_per_hour=float(total_rates[min(h, len(total_rates) - 1)]),
            reviewers_needed=n,
            capacity_per_hour_now=capacity,
        )
        for h, n in enumerate(plan.per_hour)
    ]


def _band_point(
    band: BacklogBand, band_at: dict[float, int], now: dt.datetime, h: float
) -> BacklogPoint:
    """The backlog expected ``h`` hours from now, with its Monte Carlo band."""
    return BacklogPoint(
        hours=h,
        at=now + dt.timedelta(hours=h),
        expected=float(band.mean[band_at[h]]),
        low=float(band.low[band_at[h]]),
        high=float(band.high[band_at[h]]),
    )


def _breaches(
    classes: list[PriorityClass],
    path: FluidPath,
    *,
    now: dt.datetime,
    names: dict[int, str],
    listed: Listed,
) -> tuple[list[Breach], dict[int, tuple[float, float | None]]]:
    """When each listed class's waiting tickets first breach their SLA on the fluid path;
    and the soonest breach (in hours) of each priority, over every class."""
    breaches: list[Breach] = []
    by_priority: dict[int, tuple[float, float | None]] = {}
    ids = {v: k for k, v in names.items()}
    for cls in classes:
        model_name, k = cls.name.split("\x1f")
        hours = path.breach[cls.name]
        created = path.breach_created[cls.name]
        best = by_priority.get(cls.priority)
        if best is None or (hours is not None and (best[1] is None or hours < best[1])):
            by_priority[cls.priority] = (cls.sla, hours)
        if not listed(ids[model_name], k):
            continue
        breaches.append(
            Breach(
                model=model_name,
                kind=k,
                priority=cls.priority,
                sla_hours=cls.sla,
                waiting=len(cls.waiting_ages),
                breach_at=None if hours is None else now + dt.timedelta(hours=hours),
                in_minutes=None if hours is None else round(hours * 60, 1),
                ticket_created_at=None if created is None else now + dt.timedelta(hours=created),
            )
        )
    return breaches, by_priority


@dataclass(frozen=True)
class History:
    """Tickets opened and finished in each of the past hours (oldest first)."""

    hours: list[dt.datetime]
    opened: list[int]
    finished: list[int]


def history(session: Session, *, now: dt.datetime, hours: int = 48) -> History:
    """Inflow (opened) and outflow (finished) per hour over the last ``hours``, whole queue."""
    start = _hour(now) - (hours - 1) * HOUR
    slots = [start + i * HOUR for i in range(hours)]
    index = {h: i for i, h in enumerate(slots)}
    opened = [0] * hours
    for _m, _k, hour, n in repository.hourly_opened(session, since=start):
        i = index.get(_hour(hour))
        if i is not None:
            opened[i] += n
    finished = [0] * hours
    for f in repository.finished_since(session, since=start):
        i = index.get(_hour(f.finished_at))
        if i is not None:
            finished[i] += 1
    return History(slots, opened, finished)
