"""/v1/tickets: the exception queue (API.md: Tickets).

Holder-only actions (resolve, dismiss, release, heartbeat) take the lease token
the claim returned as ``lease_token`` in the body. API.md's resolve body is
``{"label", "note"}``, so the token is optional: without it the request is
accepted from the current holder — the same API key — while its lease is
unexpired. With it, a stale token (the ticket was claimed again since) is a 409
even for the same key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.auth import (
    Principal,
    ReviewerDep,
    SessionDep,
    SettingsDep,
    UnitOfWork,
    unit_of_work,
)
from app.catalog import service as catalog
from app.pagination import CursorQuery, LimitQuery, cursor_position, decode_cursor, encode_cursor
from app.params import TicketId, seconds_query
from app.responses import model_json
from app.schemas import Page
from app.settings import Settings
from app.tickets import flows, views
from app.tickets.schemas import (
    ClaimedTicket,
    ClaimIn,
    DismissIn,
    HeartbeatIn,
    QueueSummary,
    ReleaseIn,
    ReopenIn,
    ResolveIn,
    TicketDetail,
    TicketOut,
)
from exceptions_queue import service
from exceptions_queue.states import Kind, Status
from exceptions_queue.tables import Ticket
from storage.base import utcnow

router = APIRouter(prefix="/v1/tickets", tags=["tickets"])

# The hot routes (claim and the holder's actions) are async: a UnitOfWork checks
# the key and does their database work in one thread-pool hop instead of six.
ReviewWork = Annotated[UnitOfWork, unit_of_work("review")]

_HOLDER: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such ticket."},
    409: {"description": "Not the holder, lease expired or stale token, or already finished."},
}


def _lease(settings: Settings, seconds: int | None) -> dt.timedelta:
    return dt.timedelta(seconds=seconds or settings.default_lease_seconds)


async def _as_holder(
    uow: UnitOfWork,
    action: Callable[..., Ticket],
    view: Callable[..., BaseModel],
    ticket_id: int,
    lease_token: str | None,
    **args: Any,
) -> Response:
    """A holder's action on a ticket (one unit of work), answered with ``view`` of it."""

    def work(session: Session, principal: Principal) -> BaseModel:
        now = utcnow()
        ticket = action(
            session,
            ticket_id=ticket_id,
            actor=principal.queue_actor,
            lease_token=lease_token,
            now=now,
            **args,
        )
        return view(session, ticket, now=now)

    return model_json(await uow.run(work))


@router.get("", response_model=Page[TicketOut])
def list_tickets(
    session: SessionDep,
    principal: ReviewerDep,
    status: Status | None = None,
    kind: Kind | None = None,
    model: Annotated[str | None, Query(description="A model's name.")] = None,
    assignee: Annotated[
        str | None, Query(description="Held by this API key id (`me` for the caller's).")
    ] = None,
    min_age_seconds: Annotated[float | None, seconds_query("At least this old")] = None,
    max_age_seconds: Annotated[float | None, seconds_query("At most this old")] = None,
    overdue: Annotated[bool, Query(description="Only waiting or held tickets past due.")] = False,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[TicketOut]:
    """Tickets, oldest first; each with its age and SLA due time."""
    now = utcnow()
    after = decode_cursor(cursor)
    where = service.TicketFilter(
        after=cursor_position(after) if after else None,
        status=status,
        kind=kind,
        model_id=catalog.get_model(session, model).id if model else None,
        assignee=principal.key_id if assignee == "me" else assignee,
        created_before=now - dt.timedelta(seconds=min_age_seconds) if min_age_seconds else None,
        created_after=(
            now - dt.timedelta(seconds=max_age_seconds) if max_age_seconds is not None else None
        ),
        overdue_at=now if overdue else None,
    )
    rows = service.list_tickets(session, where, limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[TicketOut](
        items=views.tickets_out(session, rows, now=now),
        next_cursor=(
            encode_cursor({"ts": rows[-1].created_at.isoformat(), "id": rows[-1].id})
            if more
            else None
        ),
    )


@router.get("/summary", response_model=QueueSummary)
def queue_summary(
    session: SessionDep,
    _reviewer: ReviewerDep,
    model: Annotated[str | None, Query(description="Only this model.")] = None,
    hours: Annotated[
        int, Query(ge=1, le=24 * 90, description="Suppressed counts of the last hours.")
    ] = 24,
) -> QueueSummary:
    """Open and held counts, oldest age and overdue tickets, throughput per reviewer,
    tickets suppressed by the hourly budget, and label agreement (second reviews)."""
    model_id = catalog.get_model(session, model).id if model else None
    return views.summary(session, now=utcnow(), model_id=model_id, hours=hours)


@router.get(
    "/{ticket_id}", response_model=TicketDetail, responses={404: {"description": "No such ticket."}}
)
def get_ticket(ticket_id: TicketId, session: SessionDep, _reviewer: ReviewerDep) -> TicketDetail:
    """The ticket, its prediction(s), the drift context, its labels and full event history."""
    return views.ticket_detail(session, service.get(session, ticket_id=ticket_id), now=utcnow())


@router.post(
    "/claim",
    response_model=ClaimedTicket,
    responses={204: {"description": "The queue (with these filters) is empty."}},
)
async def claim(uow: ReviewWork, settings: SettingsDep, body: ClaimIn | None = None) -> Any:
    """Claim the highest-priority, oldest waiting ticket, with a lease and its token.

    A ticket whose lease expired is waiting again. Two reviewers never hold the
    same ticket; a second review is never given to the first reviewer.
    """
    body = body or ClaimIn()
    lease = _lease(settings, body.lease_seconds)

    def work(session: Session, principal: Principal) -> ClaimedTicket | None:
        now = utcnow()
        ticket = service.claim(
            session,
            actor=principal.queue_actor,
            now=now,
            lease=lease,
            model_id=catalog.get_model(session, body.model).id if body.model else None,
            kind=body.kind,
        )
        return None if ticket is None else views.claimed_out(session, ticket, now=now)

    claimed = await uow.run(work)
    return Response(status_code=204) if claimed is None else model_json(claimed)


@router.post("/{ticket_id}/heartbeat", response_model=ClaimedTicket, responses=_HOLDER)
async def heartbeat(
    ticket_id: TicketId,
    uow: ReviewWork,
    settings: SettingsDep,
    body: HeartbeatIn | None = None,
) -> Response:
    """Extend the holder's lease (to now + `lease_seconds`)."""
    body = body or HeartbeatIn()
    lease = _lease(settings, body.lease_seconds)
    return await _as_holder(
        uow, service.heartbeat, views.claimed_out, ticket_id, body.lease_token, lease=lease
    )


@router.post(
    "/{ticket_id}/resolve",
    response_model=TicketOut,
    responses={**_HOLDER, 422: {"description": "A label the model does not have."}},
)
async def resolve(
    ticket_id: TicketId, body: ResolveIn, uow: ReviewWork, settings: SettingsDep
) -> Response:
    """Resolve a held ticket with the true label; it becomes retraining data.

    `{"label": ..., "note": ...}`; a drift or data-quality ticket takes
    `{"labels": [{"prediction_id", "label"}, ...]}` for any of its predictions.
    """
    if body.labels is not None:
        labels = [service.LabelIn(item.label, item.prediction_id) for item in body.labels]
    elif body.label is not None:
        labels = [service.LabelIn(body.label)]
    else:
        labels = []
    return await _as_holder(
        uow,
        flows.resolve,
        views.ticket_out,
        ticket_id,
        body.lease_token,
        labels=labels,
        note=body.note,
        settings=settings,
    )


@router.post("/{ticket_id}/dismiss", response_model=TicketOut, responses=_HOLDER)
async def dismiss(ticket_id: TicketId, body: DismissIn, uow: ReviewWork) -> Response:
    """Finish a held ticket without a label, giving a reason."""
    return await _as_holder(
        uow, service.dismiss, views.ticket_out, ticket_id, body.lease_token, reason=body.reason
    )


@router.post("/{ticket_id}/release", response_model=TicketOut, responses=_HOLDER)
async def release(ticket_id: TicketId, uow: ReviewWork, body: ReleaseIn | None = None) -> Response:
    """Give a held ticket back to the queue. Tickets abandoned often move up in priority."""
    lease_token = (body or ReleaseIn()).lease_token
    return await _as_holder(uow, service.release, views.ticket_out, ticket_id, lease_token)


@router.post("/{ticket_id}/reopen", response_model=ClaimedTicket, responses=_HOLDER)
def reopen(
    ticket_id: TicketId,
    session: SessionDep,
    principal: ReviewerDep,
    settings: SettingsDep,
    body: ReopenIn | None = None,
) -> ClaimedTicket:
    """Undo your resolution or dismissal (within 10 minutes): you hold the ticket again.

    Its labels are retracted; the history keeps both the resolution and the undo.
    Not possible once a second review of it is under way, nor for second reviews
    and adjudications themselves.
    """
    body = body or ReopenIn()
    now = utcnow()
    ticket = flows.reopen(
        session,
        ticket_id=ticket_id,
        actor=principal.queue_actor,
        lease=_lease(settings, body.lease_seconds),
        now=now,
    )
    return views.claimed_out(session, ticket, now=now)
