"""Alert channels (admin) and the alert log with dead deliveries and replay.

Everything goes through ``app.alerting.service``, the functions behind
/v1/alert-channels and /v1/alerts, with the API's own request schemas: target
checks (no link-local or metadata addresses), secret formats and redaction are
theirs. A signing secret is shown once, on the page that created it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.alerting import CHANNEL_KINDS, generate_secret, service
from app.alerting.schemas import ChannelCreate, ChannelUpdate, TestResult
from app.auth import Principal
from app.errors import DriftdeskError
from app.pagination import cursor_position, decode_cursor, encode_cursor
from app.settings import Settings
from app.ui import session as ui_session
from app.ui.admin import form_errors
from app.ui.deps import AdminUiDep, CsrfDep, ViewerDep, fail, unit_of_work
from app.ui.queue import FormDep, form_text
from app.ui.render import add_nav, page, redirect
from storage.base import utcnow

router = APIRouter(prefix="/ui", include_in_schema=False)
add_nav(
    ("admin-channels", "/ui/admin/alert-channels", "Alert channels", True),
    ("alerts", "/ui/alerts", "Alert log", False),
)

SEVERITIES = ("info", "warning", "critical")
ALERTS_PAGE = 50


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _channels_page(
    request: Request,
    principal: Principal,
    *,
    form: dict[str, Any] | None = None,
    errors: list[str] | None = None,
    created_secret: tuple[str, str] | None = None,
    test: TestResult | None = None,
    status_code: int = 200,
) -> Response:
    with unit_of_work(request, readonly=True) as session:
        channels = [
            service.channel_out(c) for c in service.list_channels(session, after=None, limit=1000)
        ]
    return page(
        request,
        "alert_channels.html",
        {
            "channels": channels,
            "kinds": CHANNEL_KINDS,
            "severities": SEVERITIES,
            "form": form or {"kind": "webhook", "min_severity": "warning"},
            "errors": errors or [],
            "created_secret": created_secret,
            "test": test,
        },
        principal=principal,
        nav="admin-channels",
        status_code=status_code,
    )


@router.get("/admin/alert-channels", response_class=HTMLResponse)
def channels(request: Request, principal: AdminUiDep) -> Response:
    return _channels_page(request, principal)


@router.post("/admin/alert-channels", response_class=HTMLResponse, dependencies=[CsrfDep])
def create_channel(request: Request, principal: AdminUiDep, form: FormDep) -> Response:
    """Add a channel; a generated webhook signing secret is shown on this response only."""
    values = {
        k: form_text(form, k)
        for k in (
            "name",
            "kind",
            "target",
            "models",
            "min_severity",
            "secret",
            "min_interval_seconds",
        )
    }
    generated = None
    if values["kind"] == "webhook" and not values["secret"] and form.get("generate") == "on":
        generated = generate_secret()
    data: dict[str, Any] = {
        "name": values["name"],
        "kind": values["kind"],
        "target": values["target"],
        "models": [m.strip() for m in values["models"].split(",") if m.strip()] or None,
        "min_severity": values["min_severity"] or "info",
    }
    if generated or values["secret"]:
        data["secret"] = generated or values["secret"]
    if values["min_interval_seconds"]:
        data["min_interval_seconds"] = values["min_interval_seconds"]
    shown = {k: v for k, v in values.items() if k != "secret"}
    try:
        body = ChannelCreate.model_validate(data)
    except ValidationError as exc:
        return _channels_page(
            request, principal, form=shown, errors=form_errors(exc, data), status_code=422
        )
    try:
        with unit_of_work(request) as session:
            service.create_channel(session, body=body, settings=_settings(request), now=utcnow())
    except DriftdeskError as exc:
        return _channels_page(
            request, principal, form=shown, errors=[exc.message], status_code=exc.status_code
        )
    ui_session.load(request).flash(f"Channel {body.name} added. Send it a test message.")
    if generated:
        # rendered, not redirected: the secret must not travel through the session cookie
        return _channels_page(
            request, principal, created_secret=(body.name, generated), status_code=201
        )
    return redirect(request, "/ui/admin/alert-channels")


@router.post(
    "/admin/alert-channels/{name}/test", response_class=HTMLResponse, dependencies=[CsrfDep]
)
def test_channel(request: Request, name: str, principal: AdminUiDep) -> Response:
    """Send a test message now and show what the receiver answered."""
    try:
        with unit_of_work(request, readonly=True) as session:
            channel = service.get_channel(session, name)
    except DriftdeskError as exc:
        return fail(request, exc, "/ui/admin/alert-channels")
    result = service.send_test(channel, settings=_settings(request), now=utcnow())
    return _channels_page(request, principal, test=result)


@router.post("/admin/alert-channels/{name}/enabled", dependencies=[CsrfDep])
def set_enabled(request: Request, name: str, principal: AdminUiDep, form: FormDep) -> Response:
    enabled = form_text(form, "enabled") == "true"
    try:
        with unit_of_work(request) as session:
            service.update_channel(
                session,
                name=name,
                body=ChannelUpdate(enabled=enabled),
                settings=_settings(request),
                actor=principal.actor,
                now=utcnow(),
            )
    except DriftdeskError as exc:
        return fail(request, exc, "/ui/admin/alert-channels")
    ui_session.load(request).flash(f"Channel {name} {'enabled' if enabled else 'disabled'}.")
    return redirect(request, "/ui/admin/alert-channels")


@router.post("/admin/alert-channels/{name}/replay", dependencies=[CsrfDep])
def replay_channel(request: Request, name: str, principal: AdminUiDep) -> Response:
    try:
        with unit_of_work(request) as session:
            n = service.replay_channel(session, name=name, now=utcnow())
    except DriftdeskError as exc:
        return fail(request, exc, "/ui/admin/alert-channels")
    ui_session.load(request).flash(f"{n} dead deliveries of {name} queued again.")
    return redirect(request, "/ui/admin/alert-channels")


@router.post("/admin/alert-channels/{name}/delete", dependencies=[CsrfDep])
def delete_channel(request: Request, name: str, principal: AdminUiDep) -> Response:
    try:
        with unit_of_work(request) as session:
            service.delete_channel(session, name=name, now=utcnow())
    except DriftdeskError as exc:
        return fail(request, exc, "/ui/admin/alert-channels")
    ui_session.load(request).flash(f"Channel {name} deleted; its past deliveries stay in the log.")
    return redirect(request, "/ui/admin/alert-channels")


# --------------------------------------------------------------------------- the log
@router.get("/alerts", response_class=HTMLResponse)
def alert_log(
    request: Request,
    principal: ViewerDep,
    status: str = "",
    delivery: str = "",
    model: str = "",
    cursor: str = "",
) -> Response:
    """Every alert, newest first, with each delivery and its attempts; dead ones to replay."""
    status = status if status in ("firing", "resolved") else ""
    delivery = delivery if delivery in ("pending", "sending", "delivered", "dead") else ""
    after = None
    if cursor:
        try:
            position = decode_cursor(cursor)
            after = cursor_position(position) if position else None
        except DriftdeskError:
            after = None
    with unit_of_work(request, readonly=True) as session:
        rows = service.list_alerts(
            session,
            status=status or None,
            model=model or None,
            rule=None,
            delivery_status=delivery or None,
            after=after,
            limit=ALERTS_PAGE,
        )
        more = len(rows) > ALERTS_PAGE
        rows = rows[:ALERTS_PAGE]
        alerts = service.alerts_out(session, rows)
    filters = {"status": status, "delivery": delivery, "model": model}
    return page(
        request,
        "alerts.html",
        {
            "alerts": alerts,
            "filters": filters,
            "next_cursor": encode_cursor({"ts": rows[-1].created_at.isoformat(), "id": rows[-1].id})
            if more
            else None,
        },
        principal=principal,
        nav="alerts",
    )


@router.post("/admin/alert-deliveries/{delivery_id}/replay", dependencies=[CsrfDep])
def replay_delivery(request: Request, delivery_id: str, principal: AdminUiDep) -> Response:
    """Send a dead delivery again (same webhook-id, fresh attempts)."""
    back = "/ui/alerts?delivery=dead"
    try:
        with unit_of_work(request) as session:
            service.replay_delivery(session, webhook_id=delivery_id, now=utcnow())
    except DriftdeskError as exc:
        return fail(request, exc, back)
    ui_session.load(request).flash(f"Delivery {delivery_id} queued again.")
    return redirect(request, back)
