"""Every statement the queue runs. Each transition is one guarded statement.

A claim is one ``UPDATE … WHERE id = (SELECT … LIMIT 1 [FOR UPDATE SKIP LOCKED])
AND <still claimable> RETURNING``: on PostgreSQL the sub-select skips rows other
claimers hold, on SQLite writers are serialised (``BEGIN IMMEDIATE``, see
app/db.py) and the outer guard repeats the condition anyway. Finishing
transitions are compare-and-set on status, holder, lease expiry and (when
given) lease token; "no row" means the caller lost, and :func:`holding` tells
why. Services never commit: the caller's session is the unit of work.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from exceptions_queue import states
from exceptions_queue.tables import (
    Label,
    LabelCounter,
    QualityDeferred,
    Ticket,
    TicketEvent,
    TicketVolume,
)
from storage.sql import POSTGRESQL, dialect, upsert
from storage.tables import LabelSchema, MonitoredModel, Prediction

T = Ticket.__table__
_T = cast(Table, T)


# --------------------------------------------------------------------------- creation
def insert_tickets(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """Insert tickets, skipping any whose (model, kind, group) exists; returns (id, kind) of new ones."""
    if not rows:
        return []
    stmt = (
        upsert(session, T)
        .on_conflict_do_nothing(index_elements=["model_id", "kind", "group_key"])
        .returning(T.c.id, T.c.kind)
    )
    return [(int(i), str(k)) for i, k in session.execute(stmt, list(rows))]


# Core, not ORM, inserts (no entities are wanted back, and they cost a fraction),
# built once: every transition runs one.
_INSERT_EVENTS = cast(Table, TicketEvent.__table__).insert()
_L = cast(Table, Label.__table__)
_INSERT_LABELS = _L.insert().returning(_L.c.id)


def insert_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(_INSERT_EVENTS, list(rows))


def add_volume(
    session: Session,
    *,
    model_id: int,
    hour: dt.datetime,
    opened: Mapping[str, int],
    suppressed: Mapping[str, int],
    expected: Mapping[str, float] | None = None,
) -> None:
    """Add to the hour's opened/suppressed counts and expected spend, per kind: a partial
    row per kind (inserted, never updated: concurrent transactions of one model do not
    wait on each other for it; readers sum, :func:`compact_volume` merges)."""
    spend = expected or {}
    kinds = sorted(set(opened) | set(suppressed) | set(spend))
    rows = [
        {
            "model_id": model_id,
            "hour": hour,
            "kind": k,
            "opened": opened.get(k, 0),
            "suppressed": suppressed.get(k, 0),
            "expected": float(spend.get(k, 0.0)),
        }
        for k in kinds
        if opened.get(k, 0) or suppressed.get(k, 0) or spend.get(k, 0.0)
    ]
    if not rows:
        return
    session.execute(_INSERT_VOLUME, rows)


_V = cast(Table, TicketVolume.__table__)
_INSERT_VOLUME = _V.insert()


def volume_to_compact(
    session: Session, *, since: dt.datetime, limit: int = 500
) -> list[tuple[int, dt.datetime, str]]:
    """The (model, hour, kind) of ``ticket_volume`` from ``since`` on with several partial rows."""
    rows = session.execute(
        select(_V.c.model_id, _V.c.hour, _V.c.kind)
        .where(_V.c.hour >= since)
        .group_by(_V.c.model_id, _V.c.hour, _V.c.kind)
        .having(func.count() > 1)
        .limit(limit)
    ).all()
    return [(int(m), h, str(k)) for m, h, k in rows]


def compact_volume(session: Session, *, since: dt.datetime, limit: int = 500) -> int:
    """Merge the partial ``ticket_volume`` rows of each (model, hour, kind) from ``since``
    on into one; returns how many rows were removed.

    Only the rows read here are deleted (a transaction inserting meanwhile adds a
    row of its own, which the next compaction merges), so no count is lost.
    """
    groups = volume_to_compact(session, since=since, limit=limit)
    removed = 0
    for model_id, hour, kind in groups:
        parts = session.execute(
            select(_V.c.id, _V.c.opened, _V.c.suppressed, _V.c.expected).where(
                _V.c.model_id == model_id, _V.c.hour == hour, _V.c.kind == kind
            )
        ).all()
        session.execute(delete(_V).where(_V.c.id.in_([p.id for p in parts])))
        session.execute(
            _INSERT_VOLUME,
            {
                "model_id": model_id,
                "hour": hour,
                "kind": kind,
                "opened": sum(int(p.opened) for p in parts),
                "suppressed": sum(int(p.suppressed) for p in parts),
                "expected": math.fsum(float(p.expected) for p in parts),
            },
        )
        removed += len(parts) - 1
    return removed


def existing_groups(
    session: Session, *, model_id: int, kind: str, group_keys: Iterable[str]
) -> dict[str, Ticket]:
    keys = list(group_keys)
    if not keys:
        return {}
    rows = session.scalars(
        select(Ticket).where(
            Ticket.model_id == model_id, Ticket.kind == kind, Ticket.group_key.in_(keys)
        )
    )
    return {t.group_key: t for t in rows}


def defer_quality(
    session: Session,
    *,
    model_id: int,
    hour: dt.datetime,
    groups: Sequence[Mapping[str, Any]],
    now: dt.datetime,
) -> None:
    """Keep a batch's data-quality groups of ``hour`` for the next holder of the model's lock."""
    session.execute(
        insert(QualityDeferred),
        {"model_id": model_id, "hour": hour, "groups": list(groups), "created_at": now},
    )


def take_deferred_quality(
    session: Session, *, model_id: int
) -> list[tuple[dt.datetime, list[dict[str, Any]]]]:
    """Delete the model's deferred data-quality groups and return them, oldest first, as
    (hour, groups). The caller holds the model's ``TICKETS`` lock, so no other
    transaction takes the same rows; rows committed after this statement began
    stay for the next holder."""
    q = QualityDeferred
    rows = session.execute(
        delete(q).where(q.model_id == model_id).returning(q.id, q.hour, q.groups)
    ).all()
    return [(hour, groups) for _, hour, groups in sorted(rows, key=lambda r: int(r[0]))]


def models_with_deferred_quality(session: Session) -> list[int]:
    """The models that have deferred data-quality groups."""
    return [int(m) for m in session.scalars(select(QualityDeferred.model_id).distinct())]


# --------------------------------------------------------------------------- claiming
# The hot transitions (claim, heartbeat, release, resolve/dismiss) are built once,
# with bound parameters, not per call: building a statement, generating its cache
# key and gathering its ORM SET pairs cost more than running it (a claim and a
# resolve spent a third of their CPU there).
_NOW = bindparam("now", type_=T.c.updated_at.type)
_KEY = bindparam("key_id", type_=T.c.claimed_by.type)


def _abandoned_now(
    now: ColumnElement[Any], *, when: ColumnElement[bool] | None = None
) -> dict[str, Any]:
    """SET clauses of an abandoning transition (SET expressions see the old row).

    ``when`` makes each one conditional (a claim abandons only an expired lease).
    """
    count = T.c.abandon_count + 1
    values: dict[str, Any] = {
        "abandon_count": count,
        "priority": case(
            (count % states.ESCALATE_AFTER == 0, T.c.priority + states.ESCALATION_STEP),
            else_=T.c.priority,
        ),
        "last_abandoned_by": T.c.claimed_by_name,
        "last_abandoned_at": now,
    }
    if when is None:
        return values
    return {k: case((when, v), else_=T.c[k]) for k, v in values.items()}


def _back_in_queue(now: ColumnElement[Any]) -> dict[str, Any]:
    """SET clauses of a claim given up (released, or its lease expired)."""
    return {
        "status": "open",
        "lease_token": None,
        "claimed_by": None,
        "claimed_by_name": None,
        "claimed_at": None,
        "lease_expires_at": None,
        "updated_at": now,
        **_abandoned_now(now),
    }


def _returning_ticket(stmt: Any) -> Any:
    """A Core ``UPDATE … RETURNING`` loaded as Ticket entities, fresh (not from the
    identity map). Cheaper than an ORM-enabled UPDATE, which derives its SET
    pairs and cache key again on every execution."""
    return (
        select(Ticket)
        .from_statement(stmt.returning(*T.c))
        .execution_options(populate_existing=True)
    )


@functools.cache
def _claim_statement(on_postgres: bool, by_model: bool, by_kind: bool) -> Any:
    claimable = or_(
        T.c.status == "open", and_(T.c.status == "claimed", T.c.lease_expires_at < _NOW)
    )
    pick = select(T.c.id).where(
        claimable, or_(T.c.excluded_key_id.is_(None), T.c.excluded_key_id != _KEY)
    )
    if by_model:
        pick = pick.where(T.c.model_id == bindparam("of_model"))
    if by_kind:
        pick = pick.where(T.c.kind == bindparam("of_kind"))
    pick = pick.order_by(T.c.priority.desc(), T.c.created_at, T.c.id).limit(1)
    if on_postgres:
        pick = pick.with_for_update(skip_locked=True)
    claimed = (
        update(_T)
        .where(T.c.id == pick.scalar_subquery(), claimable)
        .values(
            status="claimed",
            lease_token=bindparam("new_token"),
            claimed_by=_KEY,
            claimed_by_name=bindparam("actor"),
            claimed_at=_NOW,
            lease_expires_at=bindparam("expires", type_=T.c.lease_expires_at.type),
            updated_at=_NOW,
            # taking over an expired lease abandons the previous holder's claim
            **_abandoned_now(_NOW, when=T.c.status == "claimed"),
        )
    )
    if not on_postgres:
        return _returning_ticket(claimed)
    # PostgreSQL: the claim's event is written by the same statement (a data-modifying
    # CTE), one round trip and statement fewer on the queue's hottest path. A claim
    # that took over an expired lease writes none here: its caller records the
    # expiry first and then the claim, in that order (see :func:`claim_next`).
    row = claimed.returning(*T.c).cte("claimed")
    event = _INSERT_EVENTS.from_select(
        ["ticket_id", "action", "actor", "from_status", "to_status", "at", "payload"],
        select(
            row.c.id,
            literal("claim"),
            bindparam("actor"),
            literal("open"),
            literal(states.next_status("open", "claim")),
            _NOW,
            bindparam("claim_payload", type_=TicketEvent.__table__.c.payload.type),
        ).where(or_(row.c.last_abandoned_at.is_(None), row.c.last_abandoned_at != _NOW)),
    ).cte("claim_event")
    return (
        select(Ticket)
        .from_statement(select(*row.c).add_cte(event))
        .execution_options(populate_existing=True)
    )


def claim_next(
    session: Session,
    *,
    key_id: str,
    actor: str,
    lease_token: str,
    lease: dt.timedelta,
    now: dt.datetime,
    claim_payload: Mapping[str, Any],
    model_id: int | None = None,
    kind: str | None = None,
) -> Ticket | None:
    """Claim the highest-priority, oldest claimable ticket; ``None`` when there is none.

    On PostgreSQL the same statement records the claim's event (payload
    ``claim_payload``) unless the claim took over an expired lease:
    :func:`claim_event_written` tells the caller which.
    """
    params: dict[str, Any] = {
        "now": now,
        "key_id": key_id,
        "new_token": lease_token,
        "actor": actor,
        "expires": now + lease,
        "claim_payload": claim_payload,
    }
    if model_id is not None:
        params["of_model"] = model_id
    if kind is not None:
        params["of_kind"] = kind
    stmt = _claim_statement(dialect(session) == POSTGRESQL, model_id is not None, kind is not None)
    return session.scalars(stmt, params).one_or_none()


def claim_event_written(session: Session, ticket: Ticket, *, now: dt.datetime) -> bool:
    """Whether :func:`claim_next` already recorded ``ticket``'s claim event."""
    return dialect(session) == POSTGRESQL and ticket.last_abandoned_at != now


def _held(with_token: bool) -> list[ColumnElement[bool]]:
    """The guard of a holder-only transition: ``ticket_id``, ``key_id``, ``now``
    (and ``held_token``) bound at execution."""
    guard = [
        T.c.id == bindparam("ticket_id"),
        T.c.status == "claimed",
        T.c.claimed_by == _KEY,
        T.c.lease_expires_at > _NOW,
    ]
    if with_token:
        guard.append(T.c.lease_token == bindparam("held_token"))
    return guard


@functools.cache
def _holder_statement(transition: str, with_token: bool) -> Any:
    stmt = update(_T).where(*_held(with_token))
    if transition == "extend":
        stmt = stmt.values(
            lease_expires_at=bindparam("expires", type_=T.c.lease_expires_at.type),
            updated_at=_NOW,
        )
    elif transition == "release":
        stmt = stmt.values(**_back_in_queue(_NOW))
    else:  # finish
        stmt = stmt.values(
            status=bindparam("new_status"),
            lease_token=None,
            claimed_by=None,
            claimed_by_name=None,
            lease_expires_at=None,
            resolved_by=_KEY,
            resolved_by_name=bindparam("actor"),
            resolved_at=_NOW,
            resolution=bindparam("new_resolution", type_=T.c.resolution.type),
            qc_agreed=bindparam("new_qc_agreed", type_=T.c.qc_agreed.type),
            updated_at=_NOW,
        )
    return _returning_ticket(stmt)


def _as_holder(
    session: Session,
    transition: str,
    *,
    ticket_id: int,
    key_id: str,
    lease_token: str | None,
    now: dt.datetime,
    **params: Any,
) -> Ticket | None:
    stmt = _holder_statement(transition, lease_token is not None)
    params.update(ticket_id=ticket_id, key_id=key_id, now=now)
    if lease_token is not None:
        params["held_token"] = lease_token
    return session.scalars(stmt, params).one_or_none()


def extend_lease(
    session: Session,
    *,
    ticket_id: int,
    key_id: str,
    lease_token: str | None,
    lease: dt.timedelta,
    now: dt.datetime,
) -> Ticket | None:
    return _as_holder(
        session,
        "extend",
        ticket_id=ticket_id,
        key_id=key_id,
        lease_token=lease_token,
        now=now,
        expires=now + lease,
    )


def release(
    session: Session, *, ticket_id: int, key_id: str, lease_token: str | None, now: dt.datetime
) -> Ticket | None:
    return _as_holder(
        session, "release", ticket_id=ticket_id, key_id=key_id, lease_token=lease_token, now=now
    )


def finish(
    session: Session,
    *,
    ticket_id: int,
    key_id: str,
    actor: str,
    lease_token: str | None,
    now: dt.datetime,
    status: str,
    resolution: dict[str, Any],
    qc_agreed: bool | None = None,
) -> Ticket | None:
    """Resolve or dismiss: the holder, with an unexpired lease (and the token, when given)."""
    return _as_holder(
        session,
        "finish",
        ticket_id=ticket_id,
        key_id=key_id,
        lease_token=lease_token,
        now=now,
        new_status=status,
        actor=actor,
        new_resolution=resolution,
        new_qc_agreed=qc_agreed,
    )


def reopen(
    session: Session,
    *,
    ticket_id: int,
    key_id: str,
    actor: str,
    lease_token: str,
    lease: dt.timedelta,
    now: dt.datetime,
    final_kinds: Sequence[str],
) -> Ticket | None:
    """Undo a resolution: only its reviewer, within the reopen window; they hold it again."""
    stmt = _returning_ticket(
        update(_T)
        .where(
            T.c.id == ticket_id,
            T.c.status.in_(sorted(states.sources("reopen"))),
            T.c.resolved_by == key_id,
            T.c.resolved_at > now - states.REOPEN_WINDOW,
            T.c.kind.not_in(list(final_kinds)),
        )
        .values(
            status="claimed",
            lease_token=lease_token,
            claimed_by=key_id,
            claimed_by_name=actor,
            claimed_at=now,
            lease_expires_at=now + lease,
            resolved_by=None,
            resolved_by_name=None,
            resolved_at=None,
            resolution=None,
            qc_agreed=None,
            updated_at=now,
        )
    )
    return session.scalars(stmt).one_or_none()


def cancel_open_followups(
    session: Session, *, subject_ticket_id: int, now: dt.datetime, reason: str
) -> list[Ticket]:
    """Withdraw follow-ups (second reviews) of a ticket that nobody has taken yet."""
    stmt = (
        update(Ticket)
        .where(Ticket.subject_ticket_id == subject_ticket_id, Ticket.status == "open")
        .values(status="dismissed", resolution={"reason": reason}, resolved_at=now, updated_at=now)
        .returning(Ticket)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(stmt, execution_options={"populate_existing": True}))


def followups_in_progress(session: Session, *, subject_ticket_id: int) -> list[Ticket]:
    return list(
        session.scalars(
            select(Ticket).where(
                Ticket.subject_ticket_id == subject_ticket_id, Ticket.status != "open"
            )
        )
    )


def expire_leases(session: Session, *, now: dt.datetime, limit: int = 500) -> list[Ticket]:
    """Return expired claims to the queue (the reaper), at most ``limit`` per call."""
    expired = and_(T.c.status == "claimed", T.c.lease_expires_at < now)
    pick = select(T.c.id).where(expired).order_by(T.c.lease_expires_at).limit(limit)
    if dialect(session) == POSTGRESQL:
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(Ticket)
        .where(T.c.id.in_(pick.scalar_subquery()), expired)
        .values(**_back_in_queue(literal(now, T.c.updated_at.type)))
        .returning(Ticket)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(stmt, execution_options={"populate_existing": True}))


def holding(session: Session, ticket_id: int) -> states.Holding | None:
    """The ticket's status and lease as they are now (to explain a lost guard)."""
    row = session.execute(
        select(T.c.status, T.c.claimed_by, T.c.lease_token, T.c.lease_expires_at).where(
            T.c.id == ticket_id
        )
    ).one_or_none()
    if row is None:
        return None
    return states.Holding(row.status, row.claimed_by, row.lease_token, row.lease_expires_at)


# --------------------------------------------------------------------------- labels
_M = cast(Table, MonitoredModel.__table__).c
_LABEL_SCHEMA = select(_M.id, _M.name, _M.task, _M.labels, _M.options).where(
    _M.id == bindparam("model_id")
)


def label_schema(session: Session, model_id: int) -> LabelSchema:
    """What checking a resolution's labels needs of a model: a row of five columns,
    not the whole model (its features, window and drift settings are JSON to decode)."""
    row: LabelSchema = session.execute(_LABEL_SCHEMA, {"model_id": model_id}).one()
    return row


def insert_labels(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    if not rows:
        return []
    if len(rows) == 1:
        return [int(session.execute(_INSERT_LABELS, dict(rows[0])).scalar_one())]
    return [int(i) for i in session.scalars(_INSERT_LABELS, list(rows))]


def _supersede(prediction_id: ColumnElement[Any], new_label: ColumnElement[Any]) -> Any:
    """A newer human label of a prediction replaces its older current (or disputed) ones."""
    return (
        update(_L)
        .where(
            _L.c.prediction_id == prediction_id,
            _L.c.status.in_(["current", "disputed"]),
            _L.c.id != new_label,
        )
        .values(status="superseded", superseded_by=new_label)
    )


_SUPERSEDE = _supersede(bindparam("of_prediction"), bindparam("new_label"))


@functools.cache
def _insert_superseding() -> Any:
    """PostgreSQL: insert one label and supersede the older ones in one statement."""
    new = (
        _L.insert()
        # (parameters named apart from the columns, which the UPDATE would take as its SET)
        .values({c.name: bindparam(f"new_{c.name}", type_=c.type) for c in _L.c if c.name != "id"})
        .returning(_L.c.id, _L.c.prediction_id)
        .cte("new_label")
    )
    return select(new.c.id).add_cte(_supersede(new.c.prediction_id, new.c.id).cte("older_labels"))


def insert_current_labels(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert labels that become their predictions' current ones; returns their ids.

    Each supersedes the prediction's older current or disputed labels.
    """
    if dialect(session) == POSTGRESQL:
        stmt = _insert_superseding()
        return [
            int(session.execute(stmt, {f"new_{k}": v for k, v in row.items()}).scalar_one())
            for row in rows
        ]
    ids = insert_labels(session, rows)
    for row, label_id in zip(rows, ids, strict=True):
        session.execute(_SUPERSEDE, {"of_prediction": row["prediction_id"], "new_label": label_id})
    return ids


def set_label_status(
    session: Session, *, label_ids: Sequence[int], status: str, superseded_by: int | None = None
) -> None:
    if label_ids:
        session.execute(
            update(Label)
            .where(Label.id.in_(list(label_ids)))
            .values(status=status, superseded_by=superseded_by)
            .execution_options(synchronize_session=False)
        )


def labels_of_ticket(session: Session, ticket_id: int, *, statuses: Sequence[str]) -> list[Label]:
    return list(
        session.scalars(
            select(Label)
            .where(Label.ticket_id == ticket_id, Label.status.in_(list(statuses)))
            .order_by(Label.id)
        )
    )


def retract_labels(session: Session, *, ticket_id: int) -> list[int]:
    """Retract a ticket's current labels; the labels they had superseded are current again."""
    retracted = list(
        session.scalars(
            select(Label.id).where(Label.ticket_id == ticket_id, Label.status == "current")
        )
    )
    set_label_status(session, label_ids=retracted, status="retracted")
    if retracted:
        session.execute(
            update(Label)
            .where(Label.superseded_by.in_(retracted), Label.status == "superseded")
            .values(status="current", superseded_by=None)
            .execution_options(synchronize_session=False)
        )
    return retracted


def predictions_by_client_id(session: Session, ids: Sequence[int]) -> dict[str, Prediction]:
    """The predictions with these row ids, by the client id users know them by."""
    if not ids:
        return {}
    return {
        p.client_id: p
        for p in session.scalars(select(Prediction).where(Prediction.id.in_(list(ids))))
    }


def count_labels(
    session: Session, *, model_id: int, added: int, now: dt.datetime, threshold: int | None
) -> tuple[int, int, dt.datetime | None] | None:
    """Add ``added`` new labels to the model's counters.

    When ``threshold`` is reached returns (labels accumulated, total labels, when it
    was last reached) and starts the pending count again from zero; else ``None``.
    """
    table = LabelCounter.__table__
    stmt = upsert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["model_id"],
        set_={
            "total": table.c.total + stmt.excluded.total,
            "pending": table.c.pending + stmt.excluded.pending,
        },
    ).returning(table.c.pending, table.c.total, table.c.last_ready_at)
    row = session.execute(
        stmt, {"model_id": model_id, "total": added, "pending": added, "last_ready_at": None}
    ).one()
    pending, total, last = int(row[0]), int(row[1]), row[2]
    if threshold is None or pending < threshold:
        return None
    session.execute(
        update(LabelCounter)
        .where(LabelCounter.model_id == model_id)
        .values(pending=LabelCounter.pending - pending, last_ready_at=now)
    )
    return pending, total, last


# --------------------------------------------------------------------------- reads
@dataclass(frozen=True)
class TicketFilter:
    """Which tickets a list shows, in which order, and where its page starts.

    ``assignee``: held (claimed) by this key id. ``overdue_at``: waiting or held,
    and due before then. ``by_priority``: in the order a claim hands them out
    (highest priority, then oldest), paginated on (priority, created_at, id) with
    ``after_priority`` beside ``after``; otherwise oldest first, on (created_at, id).
    """

    status: str | None = None
    kind: str | None = None
    model_id: int | None = None
    assignee: str | None = None
    created_before: dt.datetime | None = None
    created_after: dt.datetime | None = None
    overdue_at: dt.datetime | None = None
    by_priority: bool = False
    after: tuple[dt.datetime, int] | None = None
    after_priority: int | None = None


def list_tickets(session: Session, where: TicketFilter, *, limit: int) -> list[Ticket]:
    """A page of tickets (:class:`TicketFilter`); ``limit + 1`` rows tell whether more follow."""
    order = (Ticket.created_at, Ticket.id)
    if where.by_priority:
        order = (Ticket.priority.desc(), *order)  # type: ignore[assignment]
    stmt = select(Ticket).order_by(*order).limit(limit + 1)
    if where.status is not None:
        stmt = stmt.where(Ticket.status == where.status)
    if where.kind is not None:
        stmt = stmt.where(Ticket.kind == where.kind)
    if where.model_id is not None:
        stmt = stmt.where(Ticket.model_id == where.model_id)
    if where.assignee is not None:
        stmt = stmt.where(Ticket.claimed_by == where.assignee, Ticket.status == "claimed")
    if where.created_before is not None:
        stmt = stmt.where(Ticket.created_at <= where.created_before)
    if where.created_after is not None:
        stmt = stmt.where(Ticket.created_at >= where.created_after)
    if where.overdue_at is not None:
        stmt = stmt.where(Ticket.status.in_(list(states.ACTIVE)), Ticket.due_at < where.overdue_at)
    if where.after is not None:
        ts, last = where.after
        later = or_(Ticket.created_at > ts, and_(Ticket.created_at == ts, Ticket.id > last))
        if where.by_priority and where.after_priority is not None:
            later = or_(
                Ticket.priority < where.after_priority,
                and_(Ticket.priority == where.after_priority, later),
            )
        stmt = stmt.where(later)
    return list(session.scalars(stmt))


def events_of(session: Session, ticket_id: int) -> list[TicketEvent]:
    return list(
        session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
    )


def labels_of(session: Session, ticket_id: int) -> list[Label]:
    return list(
        session.scalars(select(Label).where(Label.ticket_id == ticket_id).order_by(Label.id))
    )


def queue_counts(
    session: Session, *, now: dt.datetime, model_id: int | None = None
) -> list[tuple[int, str, str, int, int, dt.datetime | None]]:
    """(model id, kind, status, tickets, overdue, oldest created_at) of waiting and held tickets."""
    overdue = func.sum(case((T.c.due_at < now, 1), else_=0))
    stmt = (
        select(T.c.model_id, T.c.kind, T.c.status, func.count(), overdue, func.min(T.c.created_at))
        .where(T.c.status.in_(sorted(states.ACTIVE)))
        .group_by(T.c.model_id, T.c.kind, T.c.status)
    )
    if model_id is not None:
        stmt = stmt.where(T.c.model_id == model_id)
    return [
        (int(m), str(k), str(s), int(n), int(o or 0), oldest)
        for m, k, s, n, o, oldest in session.execute(stmt)
    ]


def finished_by_reviewer(
    session: Session, *, since: dt.datetime, model_id: int | None = None
) -> list[tuple[str, str, int]]:
    """(reviewer, status, tickets) finished since ``since``."""
    stmt = (
        select(T.c.resolved_by_name, T.c.status, func.count())
        .where(
            T.c.resolved_at >= since,
            T.c.status.in_(sorted(states.FINISHED)),
            T.c.resolved_by_name.is_not(None),
        )
        .group_by(T.c.resolved_by_name, T.c.status)
    )
    if model_id is not None:
        stmt = stmt.where(T.c.model_id == model_id)
    return [(str(r), str(s), int(n)) for r, s, n in session.execute(stmt)]


def suppressed_counts(
    session: Session, *, since: dt.datetime | None = None, model_id: int | None = None
) -> list[tuple[int, str, dt.datetime, int]]:
    """(model id, kind, hour, suppressed) for hours with suppressed tickets (partial rows summed)."""
    v = TicketVolume.__table__
    stmt = (
        select(v.c.model_id, v.c.kind, v.c.hour, func.sum(v.c.suppressed))
        .where(v.c.suppressed > 0)
        .group_by(v.c.model_id, v.c.kind, v.c.hour)
        .order_by(v.c.hour.desc(), v.c.model_id, v.c.kind)
    )
    if since is not None:
        stmt = stmt.where(v.c.hour >= since)
    if model_id is not None:
        stmt = stmt.where(v.c.model_id == model_id)
    return [(int(m), str(k), h, int(n)) for m, k, h, n in session.execute(stmt)]


def suppressed_totals(session: Session) -> list[tuple[int, str, int]]:
    v = TicketVolume.__table__
    stmt = (
        select(v.c.model_id, v.c.kind, func.sum(v.c.suppressed))
        .where(v.c.suppressed > 0)
        .group_by(v.c.model_id, v.c.kind)
    )
    return [(int(m), str(k), int(n)) for m, k, n in session.execute(stmt)]


def qc_pairs(
    session: Session, *, model_id: int | None = None
) -> list[tuple[int, str, str, bool, int]]:
    """(model id, first reviewer, second reviewer, agreed, pairs) of finished second reviews."""
    second = T.alias("second")
    first = T.alias("first")
    stmt = (
        select(
            second.c.model_id,
            first.c.resolved_by_name,
            second.c.resolved_by_name,
            second.c.qc_agreed,
            func.count(),
        )
        .select_from(second)
        .join(first, first.c.id == second.c.subject_ticket_id)
        .where(second.c.kind == "second_review", second.c.qc_agreed.is_not(None))
        .group_by(
            second.c.model_id,
            first.c.resolved_by_name,
            second.c.resolved_by_name,
            second.c.qc_agreed,
        )
    )
    if model_id is not None:
        stmt = stmt.where(second.c.model_id == model_id)
    return [
        (int(m), str(a or "?"), str(b or "?"), bool(ok), int(n))
        for m, a, b, ok, n in session.execute(stmt)
    ]


_PREDICTION_COLUMNS = (
    Prediction.client_id,
    Prediction.ts,
    Prediction.features,
    Prediction.prediction,
    Prediction.confidence,
    Prediction.model_version,
)


def _time_page(
    stmt: Any,
    at: Any,
    key: Any,
    *,
    since: dt.datetime | None,
    until: dt.datetime,
    after: tuple[dt.datetime, int] | None,
    limit: int,
) -> Any:
    """``stmt`` limited to one keyset page in [since, until), ordered by (``at``, ``key``)."""
    stmt = stmt.where(at < until).order_by(at, key).limit(limit)
    if since is not None:
        stmt = stmt.where(at >= since)
    if after is not None:
        ts, last = after
        stmt = stmt.where(or_(at > ts, and_(at == ts, key > last)))
    return stmt


def export_page(
    session: Session,
    *,
    model_id: int,
    since: dt.datetime | None,
    until: dt.datetime,
    after: tuple[dt.datetime, int] | None,
    limit: int,
) -> list[Any]:
    """One keyset page of a model's current labels, with their predictions, oldest first."""
    stmt = (
        select(
            Label.id,
            Label.label,
            Label.note,
            Label.source,
            Label.ticket_id,
            Label.ticket_kind,
            Label.labelled_by_name,
            Label.labelled_at,
            Ticket.inclusion_probability,
            *_PREDICTION_COLUMNS,
        )
        .join(Prediction, Prediction.id == Label.prediction_id)
        .join(Ticket, Ticket.id == Label.ticket_id)
        .where(Label.model_id == model_id, Label.status == "current")
    )
    page = _time_page(
        stmt, Label.labelled_at, Label.id, since=since, until=until, after=after, limit=limit
    )
    return list(session.execute(page))


def feedback_page(
    session: Session,
    *,
    model_id: int,
    since: dt.datetime | None,
    until: dt.datetime,
    after: tuple[dt.datetime, int] | None,
    limit: int,
) -> list[Any]:
    """One keyset page of a model's ground truth (POST /feedback), oldest first."""
    stmt = select(
        Prediction.id, Prediction.actual, Prediction.actual_at, *_PREDICTION_COLUMNS
    ).where(Prediction.model_id == model_id, Prediction.actual_at.is_not(None))
    page = _time_page(
        stmt,
        Prediction.actual_at,
        Prediction.id,
        since=since,
        until=until,
        after=after,
        limit=limit,
    )
    return list(session.execute(page))


def opened_per_hour(
    session: Session, model_id: int, *, since: dt.datetime
) -> list[tuple[dt.datetime, int]]:
    """Tickets opened per hour since ``since`` (the hourly volume rows, summed)."""
    rows = session.execute(
        select(TicketVolume.hour, func.sum(TicketVolume.opened))
        .where(TicketVolume.model_id == model_id, TicketVolume.hour >= since)
        .group_by(TicketVolume.hour)
    ).all()
    return [(hour, int(n or 0)) for hour, n in rows]


def finished_times(session: Session, model_id: int, *, since: dt.datetime) -> list[dt.datetime]:
    """When the model's tickets finished (resolved or dismissed) since ``since``."""
    return [
        t
        for t in session.scalars(
            select(Ticket.resolved_at).where(
                Ticket.model_id == model_id,
                Ticket.resolved_at >= since,
                Ticket.status.in_(sorted(states.FINISHED)),
            )
        )
        if t is not None
    ]
