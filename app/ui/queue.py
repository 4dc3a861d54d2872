"""The queue, "My tickets", and the ticket page with its actions.

Every action calls the exception queue's own service (``exceptions_queue.service``)
with the signed-in key as the actor and, where the page holds it, the lease
token: the UI is one more client of the same guarded transitions as the API,
so a second reviewer gets the same 409 here as there.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.auth import Principal, get_db
from app.catalog import repository as catalog_rows
from app.catalog import service as catalog
from app.errors import REFUSALS, DriftdeskError, Refusal, ValidationFailed
from app.pagination import cursor_position, decode_cursor, encode_cursor
from app.params import TicketId
from app.performance import labels as performance_labels
from app.performance import service as performance
from app.reference.service import get_reference
from app.responses import JSON
from app.settings import Settings
from app.tickets import flows, views
from app.tickets.schemas import EventOut, QueueSummary, TicketDetail, TicketOut
from app.ui import session as ui_session
from app.ui.deps import CsrfDep, ViewerDep, fail, unit_of_work
from app.ui.render import add_nav, error_page, page, redirect
from app.ui.ticket_view import drift_charts, feature_rows
from exceptions_queue import service, states
from exceptions_queue.tables import Ticket
from storage.base import utcnow
from storage.tables import MonitoredModel

router = APIRouter(prefix="/ui", include_in_schema=False)
add_nav(
    ("queue", "/ui/queue", "Queue", False),
    ("mine", "/ui/mine", "My tickets", False),
)

PAGE_SIZE = 50
AGES: dict[str, tuple[str, int | None, int | None]] = {
    "": ("any age", None, None),
    "lt1h": ("under 1 hour", None, 3600),
    "gt1h": ("over 1 hour", 3600, None),
    "gt4h": ("over 4 hours", 4 * 3600, None),
    "gt24h": ("over 1 day", 86_400, None),
}
SHORTCUT_LABELS = 9
# The queue's counts are a GROUP BY over every waiting ticket (tens of ms at 10k
# tickets): the page reuses them for a few seconds, and this process forgets them
# after any queue action it performs.
SUMMARY_TTL_SECONDS = 3.0
_summaries: dict[int | None, tuple[float, QueueSummary]] = {}
_summaries_lock = threading.Lock()


def queue_summary(session: Session, *, model_id: int | None, now: dt.datetime) -> QueueSummary:
    """``views.summary`` (the API's /v1/tickets/summary), reused for a few seconds."""
    with _summaries_lock:
        hit = _summaries.get(model_id)
    if hit is not None and time.monotonic() - hit[0] < SUMMARY_TTL_SECONDS:
        return hit[1]
    summary = views.summary(session, now=now, model_id=model_id)
    with _summaries_lock:
        _summaries[model_id] = (time.monotonic(), summary)
    return summary


def forget_summaries() -> None:
    with _summaries_lock:
        _summaries.clear()


def _lease(request: Request) -> dt.timedelta:
    settings: Settings = request.app.state.settings
    return dt.timedelta(seconds=settings.default_lease_seconds)


async def _form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def sla_state(t: TicketOut, now: dt.datetime) -> str:
    """ok, due (inside the last quarter of its SLA) or breached; finished tickets: done."""
    if t.status in states.FINISHED:
        return "done"
    if t.overdue:
        return "breached"
    span = states.sla(t.priority)
    return "due" if (t.due_at - now) < span / 4 else "ok"


# --------------------------------------------------------------------------- the queue
def _kind_counts(summary: Any) -> list[dict[str, Any]]:
    per: dict[str, dict[str, Any]] = {}
    for q in summary.queues:
        row = per.setdefault(
            q.kind, {"kind": q.kind, "open": 0, "claimed": 0, "overdue": 0, "oldest": None}
        )
        row["open"] += q.open
        row["claimed"] += q.claimed
        row["overdue"] += q.overdue
        if q.oldest_open_age_seconds is not None:
            row["oldest"] = max(row["oldest"] or 0.0, q.oldest_open_age_seconds)
    return sorted(per.values(), key=lambda r: -states.priority_of(r["kind"]))


AUDITS_SHOWN = 8


def _audits(session: Session, model: str) -> list[performance.AuditNow]:
    """What reviewers' labels add up to: the current window's audited estimate per model
    (the filtered one, or the first active ones)."""
    active = (
        catalog_rows.models(session, status="active", name=model)
        if model
        else catalog_rows.models(session, status="active", limit=AUDITS_SHOWN)
    )
    found = [performance.audit_now(session, model=m) for m in active]
    return [a for a in found if a is not None]


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    principal: ViewerDep,
    model: str = "",
    kind: str = "",
    status: str = "open",
    assignee: str = "",
    age: str = "",
    cursor: str = "",
) -> Response:
    """Tickets in the order "Claim next" hands them out (highest priority, then oldest),
    with filters, counts per kind, ages and SLA state."""
    now = utcnow()
    warnings: list[str] = []
    kind = kind if kind in states.KINDS else ""
    status = status if status in states.STATUSES else ""
    age = age if age in AGES else ""
    performance_labels.sync_all_pending(get_db(request))  # the audit panel's latest labels
    with unit_of_work(request, readonly=True) as session:
        model_id = None
        if model:
            try:
                model_id = catalog.get_model(session, model).id
            except DriftdeskError as exc:
                warnings.append(exc.message)
                model = ""
        after, after_priority = _page_start(cursor, warnings)
        _, min_age, max_age = AGES[age]
        where = service.TicketFilter(
            after=after,
            status=status or None,
            kind=kind or None,
            model_id=model_id,
            assignee=(principal.key_id if assignee == "me" else assignee) or None,
            created_before=now - dt.timedelta(seconds=min_age) if min_age else None,
            created_after=now - dt.timedelta(seconds=max_age) if max_age else None,
            by_priority=True,
            after_priority=after_priority,
        )
        context = _queue_context(session, where, model=model, now=now)
    for message in warnings:
        ui_session.load(request).flash(message, "error")
    context |= {
        "filters": {
            "model": model,
            "kind": kind,
            "status": status,
            "assignee": assignee,
            "age": age,
        },
        "first_page": not cursor,
        "undo": ui_session.load(request).undo,
    }
    return page(request, "queue.html", context, principal=principal, nav="queue")


def _page_start(
    cursor: str, warnings: list[str]
) -> tuple[tuple[dt.datetime, int] | None, int | None]:
    """Where a page of the queue starts (after this ticket, of this priority)."""
    if not cursor:
        return None, None
    try:
        position = decode_cursor(cursor)
        after = cursor_position(position) if position else None
    except ValidationFailed:
        warnings.append("That page link is no longer valid: showing the first page.")
        return None, None
    priority = position["p"] if position and isinstance(position.get("p"), int) else None
    return after, priority


def _queue_context(
    session: Session, where: service.TicketFilter, *, model: str, now: dt.datetime
) -> dict[str, Any]:
    """What the queue page shows of the database: a page of tickets, counts, audits."""
    rows = service.list_tickets(session, where, limit=PAGE_SIZE)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    tickets = views.tickets_out(session, rows, now=now)
    summary = queue_summary(session, model_id=where.model_id, now=now)
    last = rows[-1] if more else None
    return {
        "tickets": tickets,
        "sla": {t.id: sla_state(t, now) for t in tickets},
        "summary": summary,
        "audits": _audits(session, model),
        "kind_counts": _kind_counts(summary),
        "models": catalog_rows.sorted_names(session),
        "kinds": states.KINDS,
        "statuses": states.STATUSES,
        "ages": AGES,
        "reviewers": [
            (k.id, k.name)
            for k in catalog_rows.live_keys_by_name(session)
            if {"review", "admin"} & set(k.scopes)
        ],
        "next_cursor": (
            encode_cursor({"p": last.priority, "ts": last.created_at.isoformat(), "id": last.id})
            if last is not None
            else None
        ),
    }


@router.get("/mine", response_class=HTMLResponse)
def my_tickets(request: Request, principal: ViewerDep) -> Response:
    """The tickets this key holds, with their leases."""
    now = utcnow()
    with unit_of_work(request, readonly=True) as session:
        rows = service.list_tickets(
            session, service.TicketFilter(assignee=principal.key_id), limit=500
        )
        tickets = views.tickets_out(session, rows[:500], now=now)
    return page(
        request,
        "mine.html",
        {
            "tickets": tickets,
            "sla": {t.id: sla_state(t, now) for t in tickets},
            "undo": ui_session.load(request).undo,
        },
        principal=principal,
        nav="mine",
    )


def next_ticket(
    session: Session,
    *,
    principal: Principal,
    lease: dt.timedelta,
    now: dt.datetime,
    exclude: int | None = None,
    model: str | None = None,
    kind: str | None = None,
) -> tuple[Ticket | None, bool]:
    """What to work on next, within the filters: a ticket this key still holds, else a
    fresh claim; and whether it is a fresh claim."""
    model_id = catalog.get_model(session, model).id if model else None
    kind = kind if kind in states.KINDS else None
    for held in service.list_tickets(
        session,
        service.TicketFilter(assignee=principal.key_id, model_id=model_id, kind=kind),
        limit=100,
    ):
        if held.id != exclude and held.lease_expires_at and held.lease_expires_at > now:
            return held, False
    claimed = service.claim(
        session, actor=principal.queue_actor, now=now, lease=lease, model_id=model_id, kind=kind
    )
    return claimed, claimed is not None


def _go_next(
    request: Request, principal: Principal, *, exclude: int | None, done: str | None
) -> Response:
    ui = ui_session.load(request)
    if done:
        ui.flash(done)
    filters = ui.claim_filter
    forget_summaries()
    try:
        with unit_of_work(request) as session:
            ticket, fresh = next_ticket(
                session,
                principal=principal,
                lease=_lease(request),
                now=utcnow(),
                exclude=exclude,
                model=filters.get("model") or None,
                kind=filters.get("kind") or None,
            )
            ticket_id = ticket.id if ticket else None
            token = ticket.lease_token if ticket is not None else None
    except REFUSALS as exc:
        return fail(request, exc, queue_url(filters))
    # after a resolve or dismiss, the ticket claimed for the reviewer is remembered, so
    # that undoing the resolution gives it back to the queue instead of holding it
    auto = (ticket_id, token) if done and fresh and ticket_id and token else None
    ui.remember_auto_claim(auto)
    if ticket_id is None:
        ui.flash("Nothing left to claim" + (" with these filters." if filters else "."))
        return redirect(request, queue_url(filters))
    return redirect(request, f"/ui/tickets/{ticket_id}")


def queue_url(filters: dict[str, str]) -> str:
    """The queue page with the filters the reviewer claims under."""
    kept = {k: v for k, v in filters.items() if k in ("model", "kind") and v}
    return "/ui/queue" + (f"?{urlencode(kept)}" if kept else "")


@router.post("/queue/claim", dependencies=[CsrfDep])
def claim_next(request: Request, principal: ViewerDep, form: FormDep) -> Response:
    """The main action: claim the highest-priority, oldest waiting ticket (with the filters)."""
    ui_session.load(request).set_claim_filter(
        {k: v for k in ("model", "kind") if (v := form_text(form, k))}
    )
    return _go_next(request, principal, exclude=None, done=None)


@router.post("/next", dependencies=[CsrfDep])
def open_next(request: Request, principal: ViewerDep, form: FormDep) -> Response:
    """n: the next ticket (one still held, else a new claim), leaving the current one held."""
    current = form_text(form, "current")
    return _go_next(
        request, principal, exclude=int(current) if current.isdigit() else None, done=None
    )


# --------------------------------------------------------------------------- a ticket
def collapse_heartbeats(events: Sequence[EventOut]) -> list[dict[str, Any]]:
    """The history with each run of lease renewals shown once ("renewed ×12")."""
    out: list[dict[str, Any]] = []
    for e in events:
        if e.action == "heartbeat" and out and out[-1]["action"] == "heartbeat":
            out[-1]["times"] += 1
            out[-1]["at"] = e.at
            continue
        out.append({**e.model_dump(), "times": 1})
    return out


HIDDEN_DETAILS = ("evaluation", "examples", "window_start", "window_end")


def _window(details: dict[str, Any]) -> tuple[dt.datetime, dt.datetime] | None:
    try:
        return (
            dt.datetime.fromisoformat(details["window_start"]),
            dt.datetime.fromisoformat(details["window_end"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _parse_label(model: MonitoredModel, raw: str) -> Any:
    if model.task == "regression":
        try:
            return float(raw)
        except ValueError:
            raise ValidationFailed.at(["label"], f"{raw!r} is not a number") from None
    return raw


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket_id: TicketId, principal: ViewerDep) -> Response:
    now = utcnow()
    with unit_of_work(request, readonly=True) as session:
        try:
            ticket = service.get(session, ticket_id=ticket_id)
        except REFUSALS as exc:
            return error_page(request, principal, "No such ticket", exc.message, 404)
        detail = views.ticket_detail(session, ticket, now=now)
        model = catalog_rows.model(session, ticket.model_id)
        assert model is not None
        evidence = _evidence(session, ticket, detail, model)
    mine = (
        ticket.status == "claimed"
        and ticket.claimed_by == principal.key_id
        and ticket.lease_expires_at is not None
        and ticket.lease_expires_at > now
    )
    prediction = evidence["prediction"]
    context = {
        "t": detail,
        "model": model,
        "mine": mine,
        "lease_token": ticket.lease_token if mine else None,
        "lease_expires_at": ticket.lease_expires_at if mine else None,
        "lease_seconds": int(_lease(request).total_seconds()),
        "sla_state": sla_state(detail, now),
        "probabilities": sorted((prediction.probabilities or {}).items(), key=lambda kv: -kv[1])
        if prediction
        else [],
        "labels": list(model.labels or []) if model.task == "classification" else [],
        "shortcut_labels": SHORTCUT_LABELS,
        "events": collapse_heartbeats(detail.events),
        "undo": ui_session.load(request).undo,
        "window": _window(ticket.details),
        "details": {
            k: v
            for k, v in ticket.details.items()
            if k not in HIDDEN_DETAILS and not isinstance(v, dict | list)
        },
    }
    return page(request, "ticket.html", context | evidence, principal=principal, nav="queue")


def _evidence(
    session: Session, ticket: Ticket, detail: TicketDetail, model: MonitoredModel
) -> dict[str, Any]:
    """What a reviewer judges by: the one prediction and its features against the
    reference, or the sample's focus features; a drift ticket's distribution charts."""
    reference = get_reference(session, model.reference_id) if model.reference_id else None
    single = ticket.kind in service.SINGLE
    prediction = detail.predictions[0] if single and detail.predictions else None
    features = (
        feature_rows(session, model=model, features=prediction.features, reference=reference)
        if prediction
        else []
    )
    evaluation = ticket.details.get("evaluation") if ticket.kind == "drift" else None
    drifted = list(ticket.details.get("drifted_features") or [])
    charts = (
        drift_charts(session, model=model, evaluation=evaluation, names=drifted)
        if isinstance(evaluation, dict)
        else []
    )
    focus = [n for n in drifted if n in {f["name"] for f in model.features}][:4]
    if ticket.kind == "data_quality" and ticket.details.get("feature"):
        focus = [ticket.details["feature"]]
    sample = []
    if not single:
        for p in detail.predictions:
            rows = feature_rows(session, model=model, features=p.features, reference=reference)
            sample.append({"prediction": p, "cells": [r for r in rows if r.name in focus]})
    return {
        "single": single,
        "prediction": prediction,
        "features": features,
        "charts": charts,
        "focus": focus,
        "sample": sample,
    }


def _act(request: Request, ticket_id: int, action: Any) -> Refusal | None:
    """Run one queue action in its own unit of work; the refusal, if any."""
    try:
        with unit_of_work(request) as session:
            action(session)
    except REFUSALS as exc:
        return exc
    finally:
        forget_summaries()
    return None


@router.post("/tickets/{ticket_id}/resolve", dependencies=[CsrfDep])
def resolve(request: Request, ticket_id: TicketId, principal: ViewerDep, form: FormDep) -> Response:
    """Resolve with the label (or the sample's labels); the next ticket opens at once."""
    back = f"/ui/tickets/{ticket_id}"
    note = form_text(form, "note") or None
    token = form_text(form, "lease_token") or None
    chosen: list[str] = []

    def run(session: Session) -> None:
        ticket = service.get(session, ticket_id=ticket_id)
        model = catalog_rows.model(session, ticket.model_id)
        assert model is not None
        if ticket.kind in service.SINGLE:
            raw = form_text(form, "label")
            if not raw:
                raise ValidationFailed.at(["label"], "choose a label")
            labels = [service.LabelIn(_parse_label(model, raw))]
        else:
            labels = [
                service.LabelIn(_parse_label(model, value.strip()), key.removeprefix("label:"))
                for key, value in form.multi_items()
                if key.startswith("label:") and isinstance(value, str) and value.strip()
            ]
        chosen.extend(str(item.label) for item in labels)
        flows.resolve(
            session,
            ticket_id=ticket_id,
            actor=principal.queue_actor,
            lease_token=token,
            labels=labels,
            note=note,
            now=utcnow(),
            settings=request.app.state.settings,
        )

    if (error := _act(request, ticket_id, run)) is not None:
        return fail(request, error, back)
    ui_session.load(request).remember_undo(ticket_id)
    what = (
        f"as {chosen[0]}"
        if len(chosen) == 1
        else f"with {len(chosen)} labels"
        if chosen
        else "without labels"
    )
    return _go_next(
        request,
        principal,
        exclude=ticket_id,
        done=f"Ticket {ticket_id} resolved {what}. Press u to undo.",
    )


@router.post("/tickets/{ticket_id}/dismiss", dependencies=[CsrfDep])
def dismiss(request: Request, ticket_id: TicketId, principal: ViewerDep, form: FormDep) -> Response:
    back = f"/ui/tickets/{ticket_id}"
    reason = form_text(form, "reason")
    if not reason:
        ui_session.load(request).flash("Say why the ticket is dismissed.", "error")
        return redirect(request, back)
    error = _act(
        request,
        ticket_id,
        lambda session: service.dismiss(
            session,
            ticket_id=ticket_id,
            actor=principal.queue_actor,
            lease_token=form_text(form, "lease_token") or None,
            reason=reason[:2000],
            now=utcnow(),
        ),
    )
    if error is not None:
        return fail(request, error, back)
    ui_session.load(request).remember_undo(ticket_id)
    return _go_next(
        request,
        principal,
        exclude=ticket_id,
        done=f"Ticket {ticket_id} dismissed. Press u to undo.",
    )


@router.post("/tickets/{ticket_id}/release", dependencies=[CsrfDep])
def release(request: Request, ticket_id: TicketId, principal: ViewerDep, form: FormDep) -> Response:
    error = _act(
        request,
        ticket_id,
        lambda session: service.release(
            session,
            ticket_id=ticket_id,
            actor=principal.queue_actor,
            lease_token=form_text(form, "lease_token") or None,
            now=utcnow(),
        ),
    )
    if error is not None:
        return fail(request, error, f"/ui/tickets/{ticket_id}")
    ui = ui_session.load(request)
    ui.flash(f"Ticket {ticket_id} released back to the queue.")
    return redirect(request, queue_url(ui.claim_filter))  # r keeps the filters


@router.post("/tickets/{ticket_id}/reopen", dependencies=[CsrfDep])
def reopen(request: Request, ticket_id: TicketId, principal: ViewerDep) -> Response:
    """u: undo the last resolution or dismissal; its reviewer holds the ticket again."""
    error = _act(
        request,
        ticket_id,
        lambda session: flows.reopen(
            session,
            ticket_id=ticket_id,
            actor=principal.queue_actor,
            lease=_lease(request),
            now=utcnow(),
        ),
    )
    ui = ui_session.load(request)
    ui.remember_undo(None)
    if error is not None:
        return fail(request, error, f"/ui/tickets/{ticket_id}")
    given_back = _release_auto_claim(request, principal, keep=ticket_id)
    ui.flash(
        f"Ticket {ticket_id} reopened: its labels are retracted and you hold it again."
        + (f" Ticket {given_back} went back to the queue." if given_back else "")
    )
    return redirect(request, f"/ui/tickets/{ticket_id}")


def _release_auto_claim(request: Request, principal: Principal, *, keep: int) -> int | None:
    """Release the ticket claimed for the reviewer after the resolution just undone.

    It was claimed by the UI, not chosen by the reviewer, who is now back on the
    reopened ticket: held, it would wait out its lease (15 minutes) unseen. A
    ticket the reviewer already acted on is left alone (the release is refused).
    """
    ui = ui_session.load(request)
    auto = ui.auto_claim
    ui.remember_auto_claim(None)
    if auto is None or auto[0] == keep:
        return None
    auto_id, token = auto
    error = _act(
        request,
        auto_id,
        lambda session: service.release(
            session, ticket_id=auto_id, actor=principal.queue_actor, lease_token=token, now=utcnow()
        ),
    )
    return None if error is not None else auto_id


@router.post("/tickets/{ticket_id}/heartbeat", dependencies=[CsrfDep])
def heartbeat(
    request: Request, ticket_id: TicketId, principal: ViewerDep, form: FormDep
) -> Response:
    """The page renews its lease while the reviewer is active on it (JSON for the script)."""
    now = utcnow()
    expires: list[dt.datetime | None] = []
    error = _act(
        request,
        ticket_id,
        lambda session: expires.append(
            service.heartbeat(
                session,
                ticket_id=ticket_id,
                actor=principal.queue_actor,
                lease_token=form_text(form, "lease_token") or None,
                lease=_lease(request),
                now=now,
            ).lease_expires_at
        ),
    )
    if error is not None:
        return JSON(
            {"error": {"code": error.code, "message": error.message}},
            status_code=error.status_code,
        )
    until = expires[0]
    return JSON(
        {
            "lease_expires_at": until,
            "seconds_left": round((until - now).total_seconds()) if until else None,
        }
    )
