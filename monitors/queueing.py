"""Queueing models of a review queue: Erlang C, staffing, and a forecast.

A review queue is a contact centre: tickets arrive (rate ``λ`` per hour),
``c`` reviewers work them one at a time (each at ``μ`` tickets per hour, one
over the mean handle time), and a ticket waits when every reviewer is busy.
The M/M/c model (Poisson arrivals, exponential handle times) answers the
steady-state questions in closed form (Erlang C):

    a = λ/μ (offered load, in reviewers),   ρ = a/c,
    C(c, a) = P(wait > 0) = B·c / (c − a(1 − B)),  B = Erlang B(c, a),
    E[W] = C / (cμ − λ),   P(W > t) = C·exp(−(cμ − λ)·t).

Tickets carry priorities, each with its own SLA (claim before it is due).
Served in priority order (non-preemptive, identical handle times), class
``k``'s mean wait is Cobham's ``E[W_k] = C / (cμ (1 − σ_{k−1})(1 − σ_k))``
with ``σ_k`` the load of the classes at or above ``k``. Its tail is taken as
``C·exp(−t / (E[W_k]/C))``: exact for the highest class, an approximation
(exact in the mean) below it.

A queue that is behind (a backlog, or a burst of arrivals above ``cμ``) is
not in steady state; SLAs of hours make that the case that matters. The
transient forecast is the **fluid model** of the same M/M/c with priorities:
arrivals and completions flow at their mean rates, minute by minute, free
reviewers claim the highest-priority, oldest waiting work, and a class
breaches when its oldest unclaimed work is older than its SLA. The backlog's
band comes from a **Monte Carlo** of the same M/M/c (Poisson arrivals,
exponential handle times) on the same minute grid.

All times here are in hours, rates per hour; no clock, no database.

References
----------
.. [1] Gross, Shortle, Thompson & Harris, *Fundamentals of Queueing Theory*,
   4th ed., Wiley 2008 (§2.3 M/M/c, §3.4 priority queues).
.. [2] Cobham, "Priority assignment in waiting line problems", JORSA 2(1), 1954.
.. [3] Gans, Koole & Mandelbaum, "Telephone call centers: tutorial, review,
   and research prospects", M&SOM 5(2), 2003.

Examples
--------
Ten tickets an hour, twelve minutes each (μ = 5 per hour), three reviewers:

>>> q = MMc(arrival_rate=10.0, service_rate=5.0, servers=3)
>>> round(q.wait_probability, 4)
0.4444
>>> round(q.expected_wait * 60, 1)          # minutes
5.3
>>> round(q.service_level(0.25), 3)         # claimed within 15 minutes
0.873
>>> servers_for_service_level(10.0, 5.0, wait=0.25, target=0.95)
4
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

STEP_HOURS = 1.0 / 60.0  # the forecast's grid: one minute
MAX_STEP_SERVICES = 0.2  # the Monte Carlo's per-step completion probability, at most
MAX_STEPS = 5_000  # ... unless that takes more steps than this


def _check_rate(name: str, value: float, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name} must be a number")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}")
    return v


def _check_servers(servers: int) -> int:
    if isinstance(servers, bool) or not isinstance(servers, int | np.integer):
        raise ValueError("servers must be a whole number")
    if servers < 0:
        raise ValueError("servers must be >= 0")
    return int(servers)


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/c/c (Erlang B), by the stable recursion.

    >>> round(erlang_b(3, 2.0), 4)
    0.2105
    >>> erlang_b(0, 2.0)
    1.0
    """
    c = _check_servers(servers)
    a = _check_rate("load", load)
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c (Erlang C); 1 when ``load >= servers``.

    >>> round(erlang_c(1, 0.5), 4)     # M/M/1: the utilisation
    0.5
    >>> erlang_c(2, 2.0)
    1.0
    """
    c = _check_servers(servers)
    a = _check_rate("load", load)
    if a == 0:
        return 0.0
    if a >= c:
        return 1.0
    b = erlang_b(c, a)
    return min(1.0, c * b / (c - a * (1.0 - b)))


@dataclass(frozen=True)
class MMc:
    """An M/M/c queue in steady state.

    Parameters
    ----------
    arrival_rate : float
        Tickets per hour (``λ``).
    service_rate : float
        Tickets per hour one reviewer finishes (``μ``, one over the mean handle time).
    servers : int
        Reviewers (``c``).
    """

    arrival_rate: float
    service_rate: float
    servers: int

    def __post_init__(self) -> None:
        _check_rate("arrival_rate", self.arrival_rate)
        _check_rate("service_rate", self.service_rate, positive=True)
        _check_servers(self.servers)

    @property
    def offered_load(self) -> float:
        """``a = λ/μ``: the reviewers the arrivals keep busy on average."""
        return self.arrival_rate / self.service_rate

    @property
    def utilisation(self) -> float:
        """``ρ = a/c`` (``inf`` without reviewers)."""
        return self.offered_load / self.servers if self.servers else math.inf

    @property
    def stable(self) -> bool:
        """Whether the queue keeps up (``ρ < 1``); otherwise it grows without bound."""
        return self.arrival_rate == 0 or self.utilisation < 1.0

    @property
    def wait_probability(self) -> float:
        """``C(c, a)``: the share of tickets that wait at all."""
        return erlang_c(self.servers, self.offered_load)

    @property
    def expected_wait(self) -> float:
        """Mean wait before a claim, in hours (``inf`` when unstable)."""
        if self.arrival_rate == 0:
            return 0.0
        if not self.stable:
            return math.inf
        return self.wait_probability / (self.servers * self.service_rate - self.arrival_rate)

    @property
    def expected_waiting(self) -> float:
        """Mean number of tickets waiting (Little: ``λ·E[W]``)."""
        return self.arrival_rate * self.expected_wait if self.stable else math.inf

    def wait_exceeds(self, t: float) -> float:
        """``P(W > t)`` for a wait of ``t`` hours."""
        t = _check_rate("t", t)
        if self.arrival_rate == 0:
            return 0.0
        if not self.stable:
            return 1.0
        slack = self.servers * self.service_rate - self.arrival_rate
        return self.wait_probability * math.exp(-slack * t)

    def service_level(self, t: float) -> float:
        """``P(W ≤ t)``: the share of tickets claimed within ``t`` hours."""
        return 1.0 - self.wait_exceeds(t)


def servers_for_service_level(
    arrival_rate: float,
    service_rate: float,
    *,
    wait: float,
    target: float = 0.95,
    max_servers: int = 10_000,
) -> int:
    """The fewest reviewers with ``P(W ≤ wait) ≥ target`` (0 when nothing arrives).

    >>> servers_for_service_level(100.0, 10.0, wait=1 / 60, target=0.8)
    13
    """
    lam = _check_rate("arrival_rate", arrival_rate)
    mu = _check_rate("service_rate", service_rate, positive=True)
    _check_rate("wait", wait)
    if not 0 < target < 1:
        raise ValueError("target must lie in (0, 1)")
    if lam == 0:
        return 0
    c = max(1, math.floor(lam / mu) + 1)
    while c <= max_servers:
        if MMc(lam, mu, c).service_level(wait) >= target:
            return c
        c += 1
    raise ValueError(f"no staffing up to {max_servers} reviewers reaches the target")


def priority_wait_exceeds(
    arrival_rates: Sequence[float], service_rate: float, servers: int, waits: Sequence[float]
) -> Floats:
    """``P(W_k > waits[k])`` per priority class (highest first), non-preemptive M/M/c.

    The mean is Cobham's formula; the tail is ``C·exp(−t·C/E[W_k])`` (exact for
    the highest class). An overloaded class (its ``σ_k ≥ 1``) waits for ever: 1.

    >>> p = priority_wait_exceeds([2.0, 6.0], 5.0, 2, [0.5, 0.5])
    >>> [round(float(x), 4) for x in p]
    [0.013, 0.3195]
    """
    lam = np.asarray([_check_rate("arrival_rate", r) for r in arrival_rates], dtype=np.float64)
    mu = _check_rate("service_rate", service_rate, positive=True)
    c = _check_servers(servers)
    t = np.asarray([_check_rate("wait", w) for w in waits], dtype=np.float64)
    if lam.shape != t.shape:
        raise ValueError("one wait per class is needed")
    out = np.ones_like(lam)
    total = float(lam.sum())
    if total == 0:
        return np.zeros_like(lam)
    if c == 0:
        return out
    wait_p = erlang_c(c, total / mu)
    rho = lam / (c * mu)
    above = np.concatenate([[0.0], np.cumsum(rho)])
    for k in range(lam.size):
        lo, hi = 1.0 - above[k], 1.0 - above[k + 1]
        if hi <= 0:
            continue
        conditional_mean = 1.0 / (c * mu * lo * hi)
        out[k] = wait_p * math.exp(-t[k] / conditional_mean)
    return out


def servers_for_priorities(
    arrival_rates: Sequence[float],
    service_rate: float,
    slas: Sequence[float],
    *,
    target: float = 0.95,
    max_servers: int = 10_000,
) -> int:
    """The fewest reviewers holding every class within its SLA with probability ``target``.

    >>> servers_for_priorities([2.0, 6.0], 5.0, [0.5, 0.5], target=0.95)
    3
    """
    lam = [_check_rate("arrival_rate", r) for r in arrival_rates]
    mu = _check_rate("service_rate", service_rate, positive=True)
    if not 0 < target < 1:
        raise ValueError("target must lie in (0, 1)")
    total = sum(lam)
    if total == 0:
        return 0
    c = max(1, math.floor(total / mu) + 1)
    while c <= max_servers:
        if np.all(priority_wait_exceeds(lam, mu, c, slas) <= 1.0 - target):
            return c
        c += 1
    raise ValueError(f"no staffing up to {max_servers} reviewers reaches the target")


# --------------------------------------------------------------------------- the forecast
@dataclass(frozen=True)
class PriorityClass:
    """One priority band of the queue, as the forecast sees it.

    Parameters
    ----------
    name : str
        What people call it (``"low_confidence"``, ``"priority 40"``).
    priority : int
        Higher is claimed first.
    sla : float
        Hours a ticket may wait before a claim.
    arrival_rates : sequence of float
        Expected arrivals per hour for each of the coming hours (the last one
        repeats beyond the sequence).
    waiting_ages : sequence of float
        Age in hours of each ticket of this class waiting now.
    """

    name: str
    priority: int
    sla: float
    arrival_rates: tuple[float, ...]
    waiting_ages: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        _check_rate("sla", self.sla, positive=True)
        if not self.arrival_rates:
            raise ValueError("arrival_rates needs at least one hour")
        for r in self.arrival_rates:
            _check_rate("arrival_rate", r)
        for a in self.waiting_ages:
            _check_rate("waiting age", a)

    def rate_at(self, hour: int) -> float:
        return self.arrival_rates[min(hour, len(self.arrival_rates) - 1)]


@dataclass(frozen=True)
class FluidPath:
    """The fluid model's path: waiting work over time and each class's first breach.

    ``times`` are hours from now on the minute grid; ``waiting`` the tickets
    waiting at each; ``breach`` maps each class to the hours from now at which
    its first ticket passes its SLA (``None``: not within the horizon);
    ``breach_created`` when that ticket was (or will be) created, hours from now.
    """

    times: Floats
    waiting: Floats
    breach: dict[str, float | None]
    breach_created: dict[str, float | None]
    claims_per_hour: Floats = field(default_factory=lambda: np.zeros(0))


def _sorted_classes(classes: Sequence[PriorityClass]) -> list[PriorityClass]:
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise ValueError("class names must be unique")
    return sorted(classes, key=lambda c: -c.priority)


def fluid_forecast(
    classes: Sequence[PriorityClass],
    *,
    service_rate: float,
    servers: int,
    busy: float = 0.0,
    horizon: float = 24.0,
    step: float = STEP_HOURS,
) -> FluidPath:
    """Deterministic (fluid) path of the M/M/c priority queue from its state now.

    Each step: the ``busy`` reviewers finish ``busy·μ·dt`` tickets; free
    reviewers claim waiting work, highest priority then oldest first; the
    classes' arrivals join their queues. A class breaches at the first time its
    oldest unclaimed work is older than its SLA.

    Thirty tickets an hour against two reviewers finishing ten each: a ticket
    arriving at ``s`` is claimed at ``1.5·s`` (arrivals 30·s = claims 20·t), so
    it waits ``s/2``; the one arriving at 8 h is the first to wait 4 h.

    >>> one = PriorityClass("low_confidence", 40, sla=4.0, arrival_rates=(30.0,))
    >>> path = fluid_forecast([one], service_rate=10.0, servers=2, busy=2.0)
    >>> round(path.breach["low_confidence"], 1), round(path.breach_created["low_confidence"], 1)
    (12.0, 8.0)
    >>> fluid_forecast([one], service_rate=10.0, servers=3, busy=3.0).breach
    {'low_confidence': None}
    """
    mu = _check_rate("service_rate", service_rate, positive=True)
    c = _check_servers(servers)
    _check_rate("horizon", horizon, positive=True)
    _check_rate("step", step, positive=True)
    fluid = _Fluid(_sorted_classes(classes), hours=math.ceil(horizon))
    in_service = min(float(_check_rate("busy", busy)), float(c))
    # completions flow at busy·μ (more than ``busy`` per step when handle times are short)
    done_share = mu * step
    n_steps = math.ceil(horizon / step)
    times = np.arange(n_steps + 1, dtype=np.float64) * step
    waiting = np.zeros(n_steps + 1)
    # reviewers free now claim at once
    total = float(sum(item[1] for q in fluid.queues for item in q))
    taken = (c - in_service) - fluid.claim(c - in_service, 0)
    in_service += taken
    total -= taken
    waiting[0] = max(total, 0.0)
    fluid.check_breaches(0.0)
    for i in range(1, n_steps + 1):
        t0 = times[i - 1]
        hour = int(t0)
        done = in_service * done_share
        total = fluid.arrive(hour, t0, step, total)
        free = done + (c - in_service)
        taken = free - fluid.claim(free, hour)
        total -= taken
        in_service = min(float(c), max(0.0, in_service - done + taken))
        waiting[i] = max(total, 0.0)
        fluid.check_breaches(float(times[i]))
    return FluidPath(times, waiting, fluid.breach, fluid.created, fluid.claims)


_EPS = 1e-9


class _Fluid:
    """The fluid queues of :func:`fluid_forecast`: per class a FIFO of [created (hours
    from now, <= 0 for the waiting), amount]; classes of equal priority form one band,
    served as one FIFO (the oldest head among them first)."""

    def __init__(self, ordered: Sequence[PriorityClass], *, hours: int) -> None:
        self.ordered = ordered
        self.queues: list[deque[list[float]]] = [
            deque([-a, 1.0] for a in sorted(cls.waiting_ages, reverse=True)) for cls in ordered
        ]
        self.bands: list[list[deque[list[float]]]] = []
        for i, cls in enumerate(ordered):
            if i and cls.priority == ordered[i - 1].priority:
                self.bands[-1].append(self.queues[i])
            else:
                self.bands.append([self.queues[i]])
        self.claims = np.zeros(hours)
        self.breach: dict[str, float | None] = {cls.name: None for cls in ordered}
        self.created: dict[str, float | None] = {cls.name: None for cls in ordered}

    def check_breaches(self, now: float) -> None:
        """A class breaches when its oldest unclaimed work is older than its SLA."""
        for cls, q in zip(self.ordered, self.queues, strict=True):
            if self.breach[cls.name] is None and q and q[0][0] + cls.sla <= now + _EPS:
                self.breach[cls.name] = float(max(0.0, q[0][0] + cls.sla))
                self.created[cls.name] = float(q[0][0])

    def claim(self, capacity: float, hour_index: int) -> float:
        """Claim up to ``capacity``, highest priority then oldest first; what is left."""
        for band in self.bands:
            while capacity > _EPS:
                live = [q for q in band if q]
                if not live:
                    break
                q = min(live, key=lambda d: d[0][0]) if len(live) > 1 else live[0]
                take = min(capacity, q[0][1])
                q[0][1] -= take
                capacity -= take
                if hour_index < self.claims.size:
                    self.claims[hour_index] += take
                if q[0][1] <= _EPS:
                    q.popleft()
        return capacity

    def arrive(self, hour: int, t0: float, step: float, total: float) -> float:
        """Each class's arrivals of one step join its queue; ``total`` with them added."""
        for cls, q in zip(self.ordered, self.queues, strict=True):
            amount = cls.rate_at(hour) * step
            if amount > 0:
                q.append([t0 + step / 2.0, amount])
                total += amount
        return total


@dataclass(frozen=True)
class BacklogBand:
    """Monte Carlo quantiles of the waiting tickets at chosen horizons (hours from now)."""

    horizons: tuple[float, ...]
    mean: Floats
    low: Floats
    high: Floats
    level: float


def backlog_band(
    *,
    arrival_rates: Sequence[float],
    service_rate: float,
    servers: int,
    waiting: int,
    busy: int,
    horizons: Sequence[float] = (1.0, 4.0, 24.0),
    level: float = 0.8,
    runs: int = 400,
    step: float = STEP_HOURS,
    seed: int = 0,
) -> BacklogBand:
    """Waiting tickets at each horizon over ``runs`` simulated paths of the M/M/c queue.

    Arrivals are Poisson at ``arrival_rates[h]`` in hour ``h`` (all classes
    together: the count waiting does not depend on the order of service);
    each busy reviewer finishes within a step with probability
    ``1 − exp(−μ·dt)``; free reviewers claim waiting tickets at once. The band
    is the central ``level`` share of the paths (default the 10th and 90th
    percentiles).

    >>> band = backlog_band(arrival_rates=[30.0], service_rate=10.0, servers=2,
    ...                     waiting=0, busy=2, horizons=(4.0,), seed=1)
    >>> 30 < float(band.mean[0]) < 50            # the fluid model says 40
    True
    """
    mu = _check_rate("service_rate", service_rate, positive=True)
    c = _check_servers(servers)
    rates = _check_band(arrival_rates, level, runs)
    ends = sorted(float(_check_rate("horizon", h, positive=True)) for h in horizons)
    rng = np.random.default_rng(seed)
    n_busy, n_wait = _claim_at_once(runs, waiting=waiting, busy=busy, c=c)
    # geometric handle times in steps of at most a fifth of one, with mean exactly 1/μ;
    # handle times shorter than five steps: departures Poisson at busy·μ within a step
    step = max(min(step, MAX_STEP_SERVICES / mu), ends[-1] / MAX_STEPS)
    fine = mu * step <= MAX_STEP_SERVICES + 1e-12
    done_p = mu * step
    out: list[Floats] = []
    t, target = 0.0, 0
    n_steps = math.ceil(ends[-1] / step - 1e-9)
    for _ in range(n_steps):
        arrivals = rates[min(int(t), len(rates) - 1)] * step
        if fine:
            n_busy, n_wait = _finer_step(rng, n_busy, n_wait, arrivals, done_p, c)
        else:
            n_busy, n_wait = _coarse_step(rng, n_busy, n_wait, arrivals, done_p, c)
        t += step
        while target < len(ends) and t >= ends[target] - 1e-9:
            out.append(n_wait.astype(np.float64))
            target += 1
    tail = (1.0 - level) / 2.0
    stacked = np.vstack(out)
    return BacklogBand(
        horizons=tuple(ends),
        mean=stacked.mean(axis=1),
        low=np.quantile(stacked, tail, axis=1),
        high=np.quantile(stacked, 1.0 - tail, axis=1),
        level=level,
    )


def _check_band(arrival_rates: Sequence[float], level: float, runs: int) -> list[float]:
    rates = [_check_rate("arrival_rate", r) for r in arrival_rates]
    if not rates:
        raise ValueError("arrival_rates needs at least one hour")
    if not 0 < level < 1:
        raise ValueError("level must lie in (0, 1)")
    if runs < 2:
        raise ValueError("runs must be at least 2")
    return rates


Counts = npt.NDArray[np.int64]


def _claim_at_once(runs: int, *, waiting: int, busy: int, c: int) -> tuple[Counts, Counts]:
    """Every run's start: free reviewers claim waiting tickets at once."""
    n_wait = np.full(runs, int(waiting), dtype=np.int64)
    n_busy = np.full(runs, min(int(busy), c), dtype=np.int64)
    start = np.minimum(c - n_busy, n_wait)
    return n_busy + start, n_wait - start


def _finer_step(
    rng: np.random.Generator, n_busy: Counts, n_wait: Counts, arrivals: float, done_p: float, c: int
) -> tuple[Counts, Counts]:
    """One step shorter than a fifth of a handle time: each busy reviewer finishes with
    probability ``done_p``; arrivals join; free reviewers claim at once."""
    n_busy -= rng.binomial(n_busy, done_p)
    n_wait += rng.poisson(arrivals, size=n_wait.size)
    take = np.minimum(c - n_busy, n_wait)
    n_busy += take
    n_wait -= take
    return n_busy, n_wait


def _coarse_step(
    rng: np.random.Generator, n_busy: Counts, n_wait: Counts, arrivals: float, done_p: float, c: int
) -> tuple[Counts, Counts]:
    """One step of several handle times: departures Poisson at busy·μ."""
    present = n_busy + n_wait + rng.poisson(arrivals, size=n_wait.size)
    present = np.maximum(present - rng.poisson(n_busy * done_p), 0)
    n_busy = np.minimum(present, c)
    return n_busy, present - n_busy


@dataclass(frozen=True)
class StaffingPlan:
    """Reviewers needed now and for each of the coming hours."""

    now: int
    per_hour: tuple[int, ...]
    holds_now: bool  # current staffing: no breach within the horizon, and the steady-state need


def staffing_plan(
    classes: Sequence[PriorityClass],
    *,
    service_rate: float,
    servers: int,
    busy: float,
    horizon: float = 24.0,
    target: float = 0.95,
    max_servers: int = 500,
) -> StaffingPlan:
    """Reviewers needed now and per hour so that no class breaches its SLA.

    ``per_hour[h]`` is the steady-state need at hour ``h``'s arrival rates
    (:func:`servers_for_priorities`). ``now`` is at least ``per_hour[0]`` and
    enough for the fluid model to clear today's backlog with no breach within
    the horizon (the smallest such count, by bisection: more reviewers never
    make a breach earlier). Tickets already past their SLA cannot be saved and
    are left out of that check.

    >>> one = PriorityClass("low_confidence", 40, sla=4.0, arrival_rates=(30.0,))
    >>> plan = staffing_plan([one], service_rate=10.0, servers=2, busy=2.0)
    >>> plan.now, plan.per_hour[:2], plan.holds_now
    (4, (4, 4), False)
    """
    mu = _check_rate("service_rate", service_rate, positive=True)
    ordered = _sorted_classes(classes)
    hours = math.ceil(horizon)
    per_hour = tuple(
        servers_for_priorities(
            [cls.rate_at(h) for cls in ordered],
            mu,
            [cls.sla for cls in ordered],
            target=target,
            max_servers=max_servers,
        )
        for h in range(hours)
    )
    # tickets already past their SLA cannot be saved
    savable = [
        replace(c, waiting_ages=tuple(a for a in c.waiting_ages if a < c.sla)) for c in ordered
    ]

    def holds(c: int) -> bool:
        path = fluid_forecast(
            savable, service_rate=mu, servers=c, busy=min(busy, c), horizon=horizon
        )
        return all(b is None for b in path.breach.values())

    lo = per_hour[0] if per_hour else 0
    current = _check_servers(servers)
    holds_now = current >= (per_hour[0] if per_hour else 0) and holds(current)
    return StaffingPlan(_fewest(holds, lo, max_servers), per_hour, holds_now)


def _fewest(holds: Callable[[int], bool], lo: int, most: int) -> int:
    """The fewest reviewers (from ``lo``, at most ``most``) for which ``holds``: doubling,
    then bisection (more reviewers never make a breach earlier)."""
    if holds(lo):
        return lo
    hi = max(lo + 1, 1)
    while not holds(hi):
        if hi >= most:
            return most
        hi = min(most, hi * 2)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if holds(mid):
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class RecentRate:
    """An arrival rate read from the recent past, and the stretch it was read over."""

    per_hour: float
    span_hours: float  # how far back the rate reaches (since a change, or the whole look-back)
    changed: bool  # a change of rate was found: the rate is the one since it


def recent_rate(
    ages: Sequence[float] | np.ndarray,
    *,
    lookback: float,
    bin_hours: float = 1 / 12,
    min_span: float = 1 / 6,
    threshold: float = 9.0,
) -> RecentRate:
    """The arrival rate since the last change of rate, or over the whole ``lookback``.

    ``ages`` are how long ago (hours) each arrival of the last ``lookback``
    hours came. A fixed window trades noise for lag: half an hour of 66 tickets
    an hour is 33 tickets, a rate known to ±17%. Here the look-back is split in
    bins, and the one split into "before" and "after" that best explains the
    counts as two Poisson rates is tested against one rate (likelihood ratio,
    ``2·Σ n·log(n / expected)``; ``threshold`` 9 is χ²₁'s 0.3% point, and since
    every split is tried about 3% of steady two-hour look-backs show a change,
    which costs only noise: the rate since a false split is still unbiased).
    Found: the rate since the split (at least ``min_span`` hours of it). Not
    found: the whole look-back's rate, the least noisy reading of a steady rate. A one-split search (binary segmentation's
    first step, Scott & Knott 1974) finds the latest large step; a slow drift
    is read as its average over the look-back.

    >>> rng = np.random.default_rng(0)
    >>> before = rng.uniform(1.0, 2.0, rng.poisson(22))    # 22/h, between 2 h and 1 h ago
    >>> after = rng.uniform(0.0, 1.0, rng.poisson(66))     # 66/h in the last hour
    >>> r = recent_rate(np.concatenate([before, after]), lookback=2.0)
    >>> r.changed, round(r.span_hours, 2), round(r.per_hour)
    (True, 1.08, 69)
    >>> steady = rng.uniform(0.0, 2.0, rng.poisson(2 * 40))
    >>> r = recent_rate(steady, lookback=2.0)
    >>> r.changed, r.span_hours, round(r.per_hour)
    (False, 2.0, 40)
    """
    lookback = _check_rate("lookback", lookback, positive=True)
    a = np.asarray(ages, dtype=np.float64)
    a = a[(a >= 0) & (a < lookback)]
    bins = max(1, round(lookback / bin_hours))
    width = lookback / bins
    # counts per bin, the newest first
    counts = np.bincount(np.minimum((a / width).astype(np.intp), bins - 1), minlength=bins)
    total = int(counts.sum())
    steady = RecentRate(total / lookback, lookback, False)
    shortest = max(1, math.ceil(min_span / width - 1e-9))
    if total == 0 or bins < 2 * shortest:
        return steady
    after = np.cumsum(counts)[shortest - 1 : bins - shortest]  # the newest k bins, k ≥ shortest
    k = np.arange(shortest, bins - shortest + 1)
    before = total - after
    t_after = k * width
    t_before = lookback - t_after
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(
            after > 0, after * np.log(after / (total * t_after / lookback)), 0.0
        ) + np.where(before > 0, before * np.log(before / (total * t_before / lookback)), 0.0)
    best = int(np.argmax(ratio))
    if 2.0 * float(ratio[best]) < threshold:
        return steady
    return RecentRate(float(after[best]) / float(t_after[best]), float(t_after[best]), True)
