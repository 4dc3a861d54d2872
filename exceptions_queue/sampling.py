"""The sampling design of the queue: which candidates become tickets, and with what probability.

Every ticket about one prediction records the probability with which its record
was chosen (``inclusion_probability``) and the population stratum it was chosen
from (``sampling_stratum``), so reviewers' labels give a design-unbiased estimate
of the model's performance (Horvitz–Thompson, stratified; see
docs/statistics.md). The strata are those of the rules:

- ``flagged``: a confidence, margin or entropy rule fired; every such record is a
  candidate, so its base probability is 1;
- ``unflagged``: the rest, of which a random ``audit_rate`` share is drawn for
  audit; base probability the audit rate in force.

The hourly ticket budget then admits some candidates and suppresses the others;
an admitted ticket's probability is its base probability times the share of its
kind admitted in that hour so far (admitted / considered, as best known when it
is created: later suppressions in the same hour are not written back).

Tickets that are not a probability sample (drift samples, feedback mismatches,
data-quality groups) carry no probability and are never mixed into the audited
estimate. :func:`admit` is the one place the budget is spent and the
probability recorded: a different sampler (value-proportional sampling, say)
replaces it and keeps the same columns.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from exceptions_queue import repository, states

if TYPE_CHECKING:
    from exceptions_queue.opening import NewTicket

FLAGGED = "flagged"
UNFLAGGED = "unflagged"
# the strata of the population a probability sample is drawn from
PROBABILITY_STRATA = (FLAGGED, UNFLAGGED)
# strata of tickets that are not a probability sample (reported, never weighted)
DRIFT_SAMPLE = "drift_sample"
FEEDBACK_MISMATCH = "feedback_mismatch"


@dataclass(frozen=True)
class Admission:
    """What the budget let through: the tickets to open, and per kind how many it held back."""

    admitted: list[NewTicket]
    suppressed: Counter[str]


def admit(
    session: Session,
    *,
    model_id: int,
    candidates: Sequence[NewTicket],
    hour: dt.datetime,
    budget: int | None,
) -> Admission:
    """Spend the hour's ticket ``budget`` on ``candidates``; record each admitted one's probability.

    Budgeted kinds beyond the budget are suppressed, highest priority kept first
    (in arrival order within a kind); kinds outside the budget always pass.
    """
    budgeted = [c for c in candidates if c.kind in repository.BUDGETED]
    free = [c for c in candidates if c.kind not in repository.BUDGETED]
    if budget is None or not budgeted:
        return Admission([*free, *budgeted], Counter())
    volume = repository.volume_of_hour(session, model_id=model_id, hour=hour)
    used = sum(opened for kind, (opened, _) in volume.items() if kind in repository.BUDGETED)
    room = max(0, budget - used)
    ranked = sorted(budgeted, key=lambda c: -states.PRIORITY[c.kind])
    keep, held = ranked[:room], ranked[room:]
    suppressed: Counter[str] = Counter(c.kind for c in held)
    if not suppressed and not any(s for _, s in volume.values()):
        return Admission([*free, *keep], suppressed)
    considered: Counter[str] = Counter(c.kind for c in budgeted)
    share: dict[str, float] = {}
    for kind, n in considered.items():
        opened, before = volume.get(kind, (0, 0))
        share[kind] = (opened + n - suppressed[kind]) / (opened + before + n)
    scaled = [
        c
        if c.inclusion_probability is None
        else replace(c, inclusion_probability=c.inclusion_probability * share[c.kind])
        for c in keep
    ]
    return Admission([*free, *scaled], suppressed)
