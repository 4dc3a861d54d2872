"""The sampling design of the queue: which candidates become tickets, and with what probability.

Every ticket about one prediction records the probability with which its record
was chosen (``inclusion_probability``) and the population stratum it was chosen
from (``sampling_stratum``), so reviewers' labels give a design-unbiased estimate
of the model's performance (Horvitz–Thompson, stratified; see
docs/statistics.md). The strata are those of the rules:

- ``flagged``: a confidence, margin or entropy rule fired. Without a label
  budget every such record becomes a ticket (probability 1). With one, the
  budget is spent on them by **value-proportional Poisson sampling**
  (:mod:`monitors.sampling`): record ``i`` of a batch is drawn with
  ``π_i = min(1, c·v_i)``, its value ``v_i`` from uncertainty, novelty, an open
  drift incident and diversity (computed by the caller, app/ingest/value.py),
  and ``c`` set so the batch spends its share of what is left of the period's
  budget (:func:`batch_share`). Every considered record's ``π_i`` is written to
  ``sample_draws``, drawn or not; the drawn ones become tickets carrying it.
- ``unflagged``: the rest, of which a random ``audit_rate`` share is drawn for
  audit, **outside the budget**: the unbiased sample is always there.

Tickets that are not a probability sample (drift samples, feedback mismatches,
data-quality groups) carry no probability and always pass. :func:`admit` is
the one place the budget is spent and the probabilities recorded.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from exceptions_queue.tables import SampleDraw, TicketVolume
from monitors.sampling import DEFAULT_FLOOR, inclusion_probabilities, poisson_sample
from storage.options import ModelOptions

if TYPE_CHECKING:
    from exceptions_queue.opening import NewTicket

FLAGGED = "flagged"
UNFLAGGED = "unflagged"
# the strata of the population a probability sample is drawn from
PROBABILITY_STRATA = (FLAGGED, UNFLAGGED)
# strata of tickets that are not a probability sample (reported, never weighted)
DRIFT_SAMPLE = "drift_sample"
FEEDBACK_MISMATCH = "feedback_mismatch"

# the kinds a label budget is spent on (audits keep their own rate, outside it)
BUDGETED: tuple[str, ...] = ("low_confidence",)
# what spends the budget: flagged records, and audits raised while an incident needs labels
SPENDING: tuple[str, ...] = ("low_confidence", "audit")
# while an open incident needs labels: the share of a batch's budget spent on extra
# audits, and the highest rate the audit is raised to
BOOST_SHARE = 0.5
MAX_RAISED_AUDIT_RATE = 0.5
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
# how much history the hour-of-day arrival profile reads
PROFILE_DAYS = 7
# the observed rate's clock starts at least this far back (a first batch at 00:00:01
# would otherwise say the rate is unbounded)
MIN_ELAPSED = dt.timedelta(minutes=1)

Period = Literal["hour", "day"]


@dataclass(frozen=True)
class Budget:
    """A model's label budget: ``labels`` per ``period``, spent in expectation."""

    labels: int
    period: Period = "hour"

    @classmethod
    def of(cls, options: ModelOptions) -> Budget | None:
        if options.ticket_budget_per_day is not None:
            return cls(options.ticket_budget_per_day, "day")
        if options.ticket_budget_per_hour is not None:
            return cls(options.ticket_budget_per_hour, "hour")
        return None

    def start(self, now: dt.datetime) -> dt.datetime:
        hour = now.replace(minute=0, second=0, microsecond=0)
        return hour if self.period == "hour" else hour.replace(hour=0)

    def end(self, now: dt.datetime) -> dt.datetime:
        return self.start(now) + (HOUR if self.period == "hour" else DAY)


@dataclass(frozen=True)
class Admission:
    """What the budget let through: the tickets to open, per kind how many it held back,
    and the budget spent in expectation (the sum of the considered records' π)."""

    admitted: list[NewTicket]
    suppressed: Counter[str]
    expected: dict[str, float]


@dataclass(frozen=True)
class Pace:
    """How a batch's share of the budget was set (see :func:`batch_share`)."""

    spent: float  # expected labels spent in the period before this batch
    remaining: float  # budget left
    candidates: int  # this batch's
    expected_later: float  # candidates expected in the rest of the period
    share: float  # this batch's expected labels


def spent(session: Session, *, model_id: int, budget: Budget, now: dt.datetime) -> float:
    """The budget spent in expectation in the current period (Σπ of the candidates so far)."""
    total = session.scalar(
        select(func.coalesce(func.sum(TicketVolume.expected), 0.0)).where(
            TicketVolume.model_id == model_id,
            TicketVolume.hour >= budget.start(now),
            TicketVolume.hour < budget.end(now),
            TicketVolume.kind.in_(SPENDING),
        )
    )
    return float(total or 0.0)


def _considered_per_hour(
    session: Session, *, model_id: int, since: dt.datetime
) -> dict[dt.datetime, int]:
    rows = session.execute(
        select(TicketVolume.hour, TicketVolume.opened + TicketVolume.suppressed).where(
            TicketVolume.model_id == model_id,
            TicketVolume.hour >= since,
            TicketVolume.kind.in_(BUDGETED),
        )
    )
    out: dict[dt.datetime, int] = {}
    for hour, n in rows:
        out[hour] = out.get(hour, 0) + int(n)
    return out


def expected_later(
    session: Session, *, model_id: int, budget: Budget, now: dt.datetime, arriving: int
) -> float:
    """Candidates expected in the rest of the budget's period, after the ``arriving`` ones.

    The larger of two forecasts (the smaller would spend the budget early and
    leave later records tiny probabilities): the **hour-of-day profile** (the
    mean count of each hour of the day over the last ``PROFILE_DAYS`` days, once a
    day of history exists; before that the last complete hour's count, as a
    flat rate) summed over what is left of the period, and the **rate observed
    so far in the period** (this batch included) carried to its end.
    """
    hour = now.replace(minute=0, second=0, microsecond=0)
    history = _considered_per_hour(session, model_id=model_id, since=hour - PROFILE_DAYS * DAY)
    start, end = budget.start(now), budget.end(now)
    left_hours = (end - now) / HOUR
    so_far = sum(n for h, n in history.items() if start <= h < end) + arriving
    elapsed = max(now - start, MIN_ELAPSED) / HOUR
    observed = so_far / elapsed * left_hours
    past = {h: n for h, n in history.items() if h < hour}
    if not past:
        return observed
    first = min(past)
    days = (hour - first) // DAY
    if days >= 1:
        profile = np.zeros(24)
        for h, n in past.items():
            profile[h.hour] += n
        profile /= min(days, PROFILE_DAYS)
    else:
        profile = np.full(24, float(past.get(hour - HOUR, 0)))
    forecast = 0.0
    t = now
    while t < end:
        nxt = min(t.replace(minute=0, second=0, microsecond=0) + HOUR, end)
        forecast += float(profile[t.hour]) * ((nxt - t) / HOUR)
        t = nxt
    return max(forecast, observed)


def batch_share(
    session: Session, *, model_id: int, budget: Budget, now: dt.datetime, candidates: int
) -> Pace:
    """This batch's share of the budget: the rest of the period's budget in proportion to
    the batch's candidates among those expected until the period ends.

    ``share = R · n / (n + L)``: ``R`` the budget not yet spent in expectation,
    ``n`` the batch's candidates, ``L`` those expected later (:func:`expected_later`).
    While ``L > 0`` some budget is always left, so no later record gets π = 0.
    """
    used = spent(session, model_id=model_id, budget=budget, now=now)
    remaining = max(0.0, budget.labels - used)
    later = expected_later(session, model_id=model_id, budget=budget, now=now, arriving=candidates)
    share = remaining * candidates / (candidates + later) if candidates else 0.0
    return Pace(used, remaining, candidates, later, share)


@dataclass(frozen=True)
class AuditPlan:
    """The audit of one batch: the model's rate, how many unflagged records the batch
    stored, and whether an open incident wants labels (the rate is then raised)."""

    rate: float
    unflagged: int
    boost: bool = False


def raised_rate(plan: AuditPlan, share: float) -> float:
    """The audit rate while an incident wants labels: ``BOOST_SHARE`` of the batch's
    share of the budget buys extra audits, up to ``MAX_RAISED_AUDIT_RATE``.

    >>> raised_rate(AuditPlan(0.02, 400, boost=True), share=8.0)
    0.03
    >>> raised_rate(AuditPlan(0.02, 400, boost=False), share=8.0)
    0.02
    """
    if not plan.boost or plan.unflagged <= 0 or plan.rate >= MAX_RAISED_AUDIT_RATE:
        return plan.rate
    return min(MAX_RAISED_AUDIT_RATE, plan.rate + BOOST_SHARE * share / plan.unflagged)


def _audits(
    audits: Sequence[NewTicket], plan: AuditPlan | None, rate: float
) -> tuple[list[NewTicket], float]:
    """The audit tickets at ``rate`` (their draws below it), and the budget the raise
    spends in expectation."""
    if plan is None or rate <= plan.rate:
        return [a for a in audits if a.draw is None or a.draw < (plan.rate if plan else 1.0)], 0.0
    raised = [
        replace(
            a,
            inclusion_probability=rate,
            reason=(
                f"audit sample ({rate:.1%} of confident predictions, raised from "
                f"{plan.rate:.1%} while an open incident needs labels to be decided)"
            ),
            details={**a.details, "rate": rate, "raised_from": plan.rate},
        )
        for a in audits
        if a.draw is not None and a.draw < rate
    ]
    return raised, (rate - plan.rate) * plan.unflagged


def _record_draws(
    session: Session,
    model_id: int,
    considered: Sequence[NewTicket],
    values: npt.NDArray[np.float64],
    pi: npt.NDArray[np.float64],
    drawn: npt.NDArray[np.bool_],
    *,
    now: dt.datetime,
) -> None:
    """Write every considered record's value and probability to ``sample_draws``, drawn or not."""
    rows = [
        {
            "model_id": model_id,
            "prediction_id": c.prediction_id,
            "kind": c.kind,
            "stratum": c.sampling_stratum or FLAGGED,
            "value": float(v),
            "inclusion_probability": float(p),
            "sampled": bool(d),
            "at": now,
        }
        for c, v, p, d in zip(considered, values, pi, drawn, strict=True)
        if c.prediction_id is not None
    ]
    if rows:
        session.execute(insert(SampleDraw), rows)


def admit(
    session: Session,
    *,
    model_id: int,
    candidates: Sequence[NewTicket],
    now: dt.datetime,
    budget: Budget | None,
    rng: np.random.Generator | None = None,
    audit: AuditPlan | None = None,
) -> Admission:
    """Spend the period's label ``budget`` on ``candidates``; record every considered π.

    Budgeted kinds (flagged records) are drawn by Poisson sampling with
    probability proportional to their ``value`` (a candidate without one counts
    the floor value), within this batch's share of the budget. Audits keep their
    rate outside the budget, unless ``audit.boost`` (an open incident needs
    labels): then the rate is raised (:func:`raised_rate`) and the extra audits
    are paid from the batch's share. Other kinds pass.
    """
    budgeted = [c for c in candidates if c.kind in BUDGETED]
    audits = [c for c in candidates if c.kind == "audit"]
    free = [c for c in candidates if c.kind not in BUDGETED and c.kind != "audit"]
    if budget is None or not budgeted:
        kept, _ = _audits(audits, audit, audit.rate if audit else 1.0)
        return Admission([*free, *kept, *budgeted], Counter(), {})
    values = np.array(
        [DEFAULT_FLOOR if c.value is None else c.value for c in budgeted], dtype=np.float64
    )
    pace = batch_share(session, model_id=model_id, budget=budget, now=now, candidates=len(values))
    rate = raised_rate(audit, pace.share) if audit is not None else 1.0
    kept, raise_cost = _audits(audits, audit, rate)
    pi = inclusion_probabilities(values, max(0.0, pace.share - raise_cost))
    drawn = poisson_sample(pi, rng if rng is not None else np.random.default_rng())
    _record_draws(session, model_id, budgeted, values, pi, drawn, now=now)
    keep = [
        replace(c, inclusion_probability=(c.inclusion_probability or 1.0) * float(p))
        for c, p, d in zip(budgeted, pi, drawn, strict=True)
        if d
    ]
    suppressed: Counter[str] = Counter(
        c.kind for c, d in zip(budgeted, drawn, strict=True) if not d
    )
    expected: dict[str, float] = {"audit": raise_cost} if raise_cost else {}
    for c, p in zip(budgeted, pi, strict=True):
        expected[c.kind] = expected.get(c.kind, 0.0) + float(p)
    return Admission([*free, *kept, *keep], suppressed, expected)
