"""The queueing model: closed forms, and simulations of the queue it describes."""

from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np
import pytest

from monitors.queueing import (
    MMc,
    PriorityClass,
    backlog_band,
    erlang_b,
    erlang_c,
    fluid_forecast,
    priority_wait_exceeds,
    recent_rate,
    servers_for_priorities,
    servers_for_service_level,
    staffing_plan,
)


def erlang_c_textbook(c: int, a: float) -> float:
    """The factorial-sum form of Erlang C (Gross et al. eq. 2.36)."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(("c", "a"), [(1, 0.5), (2, 1.5), (5, 3.7), (12, 10.0), (30, 29.0)])
def test_erlang_c_matches_the_factorial_form(c: int, a: float) -> None:
    assert erlang_c(c, a) == pytest.approx(erlang_c_textbook(c, a), rel=1e-10)


def test_erlang_b_textbook_value_and_limits() -> None:
    # B(c, a) = (a^c/c!) / Σ a^k/k!
    a, c = 7.0, 10
    want = a**c / math.factorial(c) / sum(a**k / math.factorial(k) for k in range(c + 1))
    assert erlang_b(c, a) == pytest.approx(want)
    assert erlang_c(3, 0.0) == 0.0
    assert erlang_c(3, 3.0) == 1.0


def test_mm1_reduces_to_its_closed_forms() -> None:
    q = MMc(arrival_rate=6.0, service_rate=10.0, servers=1)
    rho = 0.6
    assert q.wait_probability == pytest.approx(rho)
    assert q.expected_wait == pytest.approx(rho / (10.0 - 6.0))
    assert q.wait_exceeds(0.5) == pytest.approx(rho * math.exp(-(10.0 - 6.0) * 0.5))
    assert q.expected_waiting == pytest.approx(rho**2 / (1 - rho))


def test_unstable_and_empty_queues() -> None:
    q = MMc(arrival_rate=30.0, service_rate=10.0, servers=2)
    assert not q.stable
    assert q.expected_wait == math.inf
    assert q.service_level(10.0) == 0.0
    assert MMc(0.0, 10.0, 0).expected_wait == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"arrival_rate": -1.0, "service_rate": 1.0, "servers": 1},
        {"arrival_rate": 1.0, "service_rate": 0.0, "servers": 1},
        {"arrival_rate": math.nan, "service_rate": 1.0, "servers": 1},
        {"arrival_rate": 1.0, "service_rate": 1.0, "servers": -2},
        {"arrival_rate": 1.0, "service_rate": 1.0, "servers": 1.5},
    ],
)
def test_bad_parameters_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        MMc(**bad)  # type: ignore[arg-type]


def test_staffing_is_the_smallest_count_reaching_the_target() -> None:
    lam, mu, t = 120.0, 12.0, 1 / 30
    c = servers_for_service_level(lam, mu, wait=t, target=0.9)
    assert MMc(lam, mu, c).service_level(t) >= 0.9
    assert MMc(lam, mu, c - 1).service_level(t) < 0.9
    assert servers_for_service_level(0.0, mu, wait=t) == 0
    with pytest.raises(ValueError, match="target"):
        servers_for_service_level(lam, mu, wait=t, target=1.0)


def simulate_mmc(
    lam: float, mu: float, c: int, n: int, seed: int, classes: tuple[float, ...] = (1.0,)
) -> tuple[np.ndarray, np.ndarray]:
    """Event-driven M/M/c, non-preemptive priorities (class 0 first), FIFO within a class.

    Returns each ticket's wait and class, the first tenth dropped as warm-up.
    """
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / lam, n))
    kinds = rng.choice(len(classes), size=n, p=np.asarray(classes) / sum(classes))
    services = rng.exponential(1 / mu, n)
    free_at = [0.0] * c
    queues: list[deque[int]] = [deque() for _ in classes]
    waits = np.zeros(n)
    i = served = 0
    while served < n:
        t = heapq.heappop(free_at)  # a reviewer becomes free at t
        while i < n and arrivals[i] <= t:
            queues[kinds[i]].append(i)
            i += 1
        if not any(queues):  # nobody waiting: the reviewer takes the next arrival
            t = float(arrivals[i])
            queues[kinds[i]].append(i)
            i += 1
        job = next(q for q in queues if q).popleft()
        waits[job] = t - arrivals[job]
        heapq.heappush(free_at, t + services[job])
        served += 1
    burn = n // 10
    return waits[burn:], kinds[burn:]


def test_erlang_c_against_a_simulation() -> None:
    lam, mu, c = 40.0, 10.0, 5  # ρ = 0.8
    waits, _ = simulate_mmc(lam, mu, c, 300_000, seed=3)
    q = MMc(lam, mu, c)
    assert np.mean(waits > 0) == pytest.approx(q.wait_probability, abs=0.03)
    assert np.mean(waits) == pytest.approx(q.expected_wait, rel=0.1)
    for t in (0.05, 0.15):
        assert np.mean(waits > t) == pytest.approx(q.wait_exceeds(t), abs=0.02)


def test_priority_waits_against_a_simulation() -> None:
    lam, mu, c = 36.0, 10.0, 4  # two classes, one third high priority
    waits, kinds = simulate_mmc(lam, mu, c, 300_000, seed=5, classes=(1.0, 2.0))
    rates = [lam / 3, 2 * lam / 3]
    # Cobham's mean wait: C / (cμ (1 − σ_{k−1})(1 − σ_k))
    wait_p = erlang_c(c, lam / mu)
    rho = np.array(rates) / (c * mu)
    means = [
        wait_p / (c * mu * 1.0 * (1 - rho[0])),
        wait_p / (c * mu * (1 - rho[0]) * (1 - 1.0 * rho.sum())),
    ]
    for k in (0, 1):
        assert np.mean(waits[kinds == k]) == pytest.approx(means[k], rel=0.12)
    # the tail: exact for the top class, an approximation below
    t = np.array([0.05, 0.1])
    tails = priority_wait_exceeds(rates, mu, c, t)
    assert np.mean(waits[kinds == 0] > t[0]) == pytest.approx(tails[0], abs=0.02)
    assert np.mean(waits[kinds == 1] > t[1]) == pytest.approx(tails[1], abs=0.05)


def test_priority_staffing_holds_every_class() -> None:
    c = servers_for_priorities([5.0, 20.0], 6.0, [0.1, 0.5], target=0.95)
    assert np.all(priority_wait_exceeds([5.0, 20.0], 6.0, c, [0.1, 0.5]) <= 0.05)
    assert np.any(priority_wait_exceeds([5.0, 20.0], 6.0, c - 1, [0.1, 0.5]) > 0.05)


def simulate_overload(
    lam: float, mu: float, c: int, sla: float, seed: int, horizon: float = 30.0
) -> float | None:
    """Event-driven FIFO M/M/c from an empty queue: when does the first ticket pass its SLA?"""
    rng = np.random.default_rng(seed)
    n = int(lam * horizon * 1.5)
    arrivals = np.cumsum(rng.exponential(1 / lam, n))
    services = rng.exponential(1 / mu, n)
    free_at = [0.0] * c
    for i in range(n):
        start = max(arrivals[i], heapq.heappop(free_at))
        if start - arrivals[i] > sla:
            return float(arrivals[i] + sla)
        heapq.heappush(free_at, start + services[i])
    return None


def test_fluid_breach_time_against_a_simulation() -> None:
    # 30/h against 2 × 10/h: the fluid model says the ticket arriving at 8 h breaches at 12 h
    cls = PriorityClass("low_confidence", 40, sla=4.0, arrival_rates=(30.0,))
    path = fluid_forecast([cls], service_rate=10.0, servers=2, busy=0.0, horizon=24.0)
    predicted = path.breach["low_confidence"]
    assert predicted == pytest.approx(12.0, abs=0.15)  # the minute grid's half-step arrivals
    simulated = [simulate_overload(30.0, 10.0, 2, 4.0, seed) for seed in range(40)]
    times = np.array([s for s in simulated if s is not None])
    assert times.size == 40
    # random fluctuations make the first breach come somewhat earlier than the mean path
    assert np.median(times) == pytest.approx(predicted, rel=0.2)


def test_fluid_clears_a_backlog_in_priority_order() -> None:
    high = PriorityClass("drift", 100, sla=1.0, arrival_rates=(0.0,), waiting_ages=(0.5,) * 5)
    low = PriorityClass(
        "low_confidence", 40, sla=4.0, arrival_rates=(0.0,), waiting_ages=(3.0,) * 10
    )
    # 2 reviewers × 10/h: two claimed at once, the other high ones within 9 min, the low
    # ones next (their last at 39 min)
    path = fluid_forecast([low, high], service_rate=10.0, servers=2, busy=0.0, horizon=4.0)
    assert path.breach == {"drift": None, "low_confidence": None}
    assert path.waiting[0] == pytest.approx(13.0)
    assert path.waiting[-1] == pytest.approx(0.0, abs=1e-6)
    # one reviewer: the low ones wait behind the high ones (claimed from 24 min at 10/h)
    # and the unclaimed ones cross 4 h at 1 h from now
    path = fluid_forecast([low, high], service_rate=10.0, servers=1, busy=0.0, horizon=4.0)
    assert path.breach["drift"] is None
    assert path.breach["low_confidence"] == pytest.approx(1.0, abs=0.02)
    assert path.breach_created["low_confidence"] == pytest.approx(-3.0)


def test_band_mean_follows_the_fluid_path_and_covers_simulated_paths() -> None:
    rates = [20.0] * 5 + [60.0] * 19  # a ×3 volume step at hour 5
    band = backlog_band(
        arrival_rates=rates, service_rate=10.0, servers=3, waiting=5, busy=3, runs=300, seed=2
    )
    classes = [
        PriorityClass("all", 40, sla=1000.0, arrival_rates=tuple(rates), waiting_ages=(0.1,) * 5)
    ]
    path = fluid_forecast(classes, service_rate=10.0, servers=3, busy=3.0, horizon=24.0)
    fluid_at = {h: float(np.interp(h, path.times, path.waiting)) for h in band.horizons}
    # overloaded from hour 5: +30/h for 19 h
    assert fluid_at[24.0] == pytest.approx(30 * 19, rel=0.02)
    assert float(band.mean[2]) == pytest.approx(fluid_at[24.0], rel=0.05)
    assert band.low[2] < fluid_at[24.0] < band.high[2]
    # a fresh set of simulated paths falls inside the 80% band about 80% of the time
    fresh = backlog_band(
        arrival_rates=rates,
        service_rate=10.0,
        servers=3,
        waiting=5,
        busy=3,
        runs=300,
        seed=99,
        level=0.5,
    )
    assert fresh.low[2] > band.low[2]
    assert fresh.high[2] < band.high[2]


def test_band_coverage_over_independent_paths() -> None:
    rates = [25.0]
    band = backlog_band(
        arrival_rates=rates,
        service_rate=10.0,
        servers=2,
        waiting=0,
        busy=0,
        horizons=(4.0,),
        runs=400,
        seed=7,
    )
    # the band's own draws: 80% inside by construction; independent seeds: close to it
    inside = []
    for seed in range(100, 130):
        one = backlog_band(
            arrival_rates=rates,
            service_rate=10.0,
            servers=2,
            waiting=0,
            busy=0,
            horizons=(4.0,),
            runs=2,
            seed=seed,
        )
        inside.append(float(band.low[0]) <= float(one.mean[0]) <= float(band.high[0]))
    assert 0.6 <= np.mean(inside) <= 1.0


def test_staffing_plan_holds_the_sla_and_one_fewer_does_not() -> None:
    backlog = tuple(np.linspace(0.1, 3.5, 150))  # 150 tickets waiting, the oldest 3.5 h
    cls = PriorityClass(
        "low_confidence", 40, sla=4.0, arrival_rates=(24.0,) * 24, waiting_ages=backlog
    )
    plan = staffing_plan([cls], service_rate=8.0, servers=2, busy=2.0)
    assert not plan.holds_now
    assert plan.per_hour == (4,) * 24  # steady state: a = 3, so 4 reviewers
    # the backlog needs one more: at 4 × 8/h the 60th oldest is claimed after 4 h
    assert plan.now == 5
    ok = fluid_forecast([cls], service_rate=8.0, servers=plan.now, busy=3.0)
    short = fluid_forecast([cls], service_rate=8.0, servers=plan.now - 1, busy=3.0)
    assert ok.breach["low_confidence"] is None
    assert short.breach["low_confidence"] is not None


def test_classes_of_equal_priority_are_served_oldest_first() -> None:
    churn = PriorityClass("churn", 40, sla=4.0, arrival_rates=(0.0,), waiting_ages=(1.0,) * 10)
    fraud = PriorityClass("fraud", 40, sla=4.0, arrival_rates=(0.0,), waiting_ages=(3.5,) * 5)
    # one reviewer, 10/h: fraud's older tickets go first (within 24 min), none breaches
    path = fluid_forecast([churn, fraud], service_rate=10.0, servers=1, busy=0.0, horizon=3.0)
    assert path.breach == {"churn": None, "fraud": None}


def _arrivals(rng: np.random.Generator, segments: list[tuple[float, float, float]]) -> np.ndarray:
    """Poisson arrival ages (hours ago) from (rate per hour, newest age, oldest age) segments."""
    parts = [rng.uniform(lo, hi, rng.poisson(rate * (hi - lo))) for rate, lo, hi in segments]
    return np.concatenate(parts)


def test_recent_rate_is_unbiased_and_steady_when_nothing_changed() -> None:
    rng = np.random.default_rng(20261203)
    reads = [recent_rate(_arrivals(rng, [(40.0, 0.0, 2.0)]), lookback=2.0) for _ in range(2000)]
    rates = np.array([r.per_hour for r in reads])
    assert abs(rates.mean() - 40.0) < 0.3  # unbiased (standard error 0.1)
    assert np.mean([r.changed for r in reads]) < 0.05  # a false change is rare (and unbiased)
    # two hours of arrivals: sd 4.5 (the few false splits add some); a 30-min window: 8.9
    assert rates.std() < 6.5


def test_recent_rate_finds_a_step_and_reads_the_rate_since_it() -> None:
    """A surge (22/h to 66/h): an hour into it the rate since the step is read, with less
    noise than a fixed 30-minute window; half an hour in, mostly found too."""
    rng = np.random.default_rng(7)
    found, errors, window_errors = 0, [], []
    for _ in range(1000):
        ages = _arrivals(rng, [(66.0, 0.0, 1.0), (22.0, 1.0, 2.0)])
        r = recent_rate(ages, lookback=2.0)
        found += r.changed
        errors.append(abs(r.per_hour - 66.0))
        window_errors.append(abs(np.sum(ages < 0.5) / 0.5 - 66.0))
    assert found >= 950
    assert np.mean(errors) < 0.85 * np.mean(window_errors)
    half_hour = [
        recent_rate(_arrivals(rng, [(66.0, 0.0, 0.5), (22.0, 0.5, 2.0)]), lookback=2.0)
        for _ in range(1000)
    ]
    assert np.mean([r.changed for r in half_hour]) > 0.85
    assert abs(np.mean([r.per_hour for r in half_hour if r.changed]) - 66.0) < 6.0


def test_recent_rate_edges() -> None:
    assert recent_rate([], lookback=0.5).per_hour == 0.0
    r = recent_rate([0.01, 0.02, 3.0, -1.0], lookback=0.5)  # outside the look-back: ignored
    assert r.per_hour == 4.0 and not r.changed
    with pytest.raises(ValueError, match="lookback"):
        recent_rate([0.1], lookback=0.0)
