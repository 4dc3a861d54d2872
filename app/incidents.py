"""The incidents drift and performance share: open after k of the last m bad windows,
close after q good ones in a row (the model's ``incident_*`` options).

:func:`advance` is the one place an incident opens, carries on or closes; each
evaluator passes its tables (:class:`IncidentKind`) and what it adds
(:class:`Moves`: its own columns, and its flows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.sql import newest_first
from storage.tables import MonitoredModel

Action = Literal["open", "close", "hold", "none"]


@dataclass(frozen=True)
class Debounce:
    open_after: int  # k
    of_last: int  # m
    close_after: int  # q

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> Debounce:
        return cls(
            int(options.get("incident_open_after", 2)),
            int(options.get("incident_of_last", 3)),
            int(options.get("incident_close_after", 3)),
        )

    def step(
        self, *, open_now: bool, bad: bool, recent: Sequence[bool], clean_streak: int
    ) -> tuple[Action, int]:
        """What one judged window does to the incident, and the new clean streak.

        ``recent`` are the last judged windows' verdicts, newest first, this one
        included (only read while no incident is open).
        """
        if not open_now:
            opens = bad and sum(recent[: self.of_last]) >= self.open_after
            return ("open" if opens else "none"), 0
        if bad:
            return "hold", 0
        streak = clean_streak + 1
        return ("close" if streak >= self.close_after else "hold"), streak


@dataclass(frozen=True)
class IncidentKind:
    """One kind of incident: its ORM tables, and what its evaluator adds to the shared steps.

    ``incident`` and ``evaluation`` are ORM classes with the incident columns both
    kinds share (``model_id``, ``status``, ``opened_at``, ``closed_at``,
    ``opened_evaluation_id``, ``last_evaluation_id``, ``closed_evaluation_id``,
    ``evaluations``, ``clean_streak``; an evaluation's ``status`` and
    ``incident_id``). ``bad`` is the evaluation column that says a window was bad
    (``drifted``, ``degraded``); ``newest_first`` orders the evaluations.
    """

    incident: Any
    evaluation: Any
    bad: Any
    newest_first: Any


@dataclass(frozen=True)
class Moves:
    """What one evaluator does beyond the shared steps, for one judged window.

    ``new(**shared)`` builds the incident to open from the shared columns (it adds its
    own); ``carry(incident, judged)`` updates an open incident the window joins
    (``judged`` is False for an ``insufficient_data`` window); ``opened`` and
    ``closed`` hand the incident to the flows, in the same transaction.
    """

    new: Callable[..., Any]
    opened: Callable[[Any], None]
    closed: Callable[[Any], None]
    carry: Callable[[Any, bool], None] = lambda incident, judged: None


def open_incident(session: Session, kind: IncidentKind, model_id: int) -> Any | None:
    """The model's open incident of this kind, if any."""
    table = kind.incident
    return session.scalar(select(table).where(table.model_id == model_id, table.status == "open"))


def recent_verdicts(session: Session, kind: IncidentKind, model_id: int, limit: int) -> list[bool]:
    """The last judged windows' verdicts (bad or not), newest first."""
    table = kind.evaluation
    return list(
        session.scalars(
            select(kind.bad)
            .where(table.model_id == model_id, table.status != "insufficient_data")
            .order_by(kind.newest_first)
            .limit(limit)
        )
    )


def advance(
    session: Session,
    kind: IncidentKind,
    moves: Moves,
    *,
    model: MonitoredModel,
    evaluation: Any,
    bad: bool,
    now: dt.datetime,
) -> None:
    """Move the model's incident after one stored evaluation: open it after k bad of the
    last m windows, close it after q good ones in a row (:class:`Debounce`)."""
    incident = open_incident(session, kind, model.id)
    if evaluation.status == "insufficient_data":
        evaluation.incident_id = incident.id if incident else None
        if incident is not None:
            moves.carry(incident, False)
        return
    debounce = Debounce.of(model.options)
    if incident is None:
        _maybe_open(
            session, kind, moves, debounce, model=model, evaluation=evaluation, bad=bad, now=now
        )
        return
    evaluation.incident_id = incident.id
    incident.last_evaluation_id = evaluation.id
    incident.evaluations += 1
    action, incident.clean_streak = debounce.step(
        open_now=True, bad=bad, recent=(), clean_streak=incident.clean_streak
    )
    moves.carry(incident, True)
    if action == "close":
        incident.status = "closed"
        incident.closed_at = now
        incident.closed_evaluation_id = evaluation.id
        moves.closed(incident)


def _maybe_open(
    session: Session,
    kind: IncidentKind,
    moves: Moves,
    debounce: Debounce,
    *,
    model: MonitoredModel,
    evaluation: Any,
    bad: bool,
    now: dt.datetime,
) -> None:
    recent = recent_verdicts(session, kind, model.id, debounce.of_last)
    action, _ = debounce.step(open_now=False, bad=bad, recent=recent, clean_streak=0)
    if action != "open":
        return
    incident = moves.new(
        model_id=model.id,
        status="open",
        opened_at=now,
        opened_evaluation_id=evaluation.id,
        last_evaluation_id=evaluation.id,
        evaluations=1,
        clean_streak=0,
    )
    session.add(incident)
    session.flush()
    evaluation.incident_id = incident.id
    moves.opened(incident)


def listed(
    session: Session,
    table: Any,
    model_id: int,
    *,
    limit: int,
    before: int | None = None,
    status: str | None = None,
) -> list[Any]:
    """A model's incidents of ``table``, newest first (below id ``before``; in ``status``)."""
    where = [table.model_id == model_id]
    if status:
        where.append(table.status == status)
    return newest_first(session, table, *where, limit=limit, before=before)
