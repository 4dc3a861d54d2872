"""Alerting: /v1/alert-channels, /v1/alerts, /v1/alert-deliveries, /v1/alert-silences.

Secrets go in (channel creation, rotation) and never come out: no response
model here has a field that could hold one, and channel targets are redacted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from app.alerting import service
from app.alerting.schemas import (
    AlertOut,
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    DeliveryOut,
    ReplayOut,
    SilenceCreate,
    SilenceOut,
    TestResult,
)
from app.auth import AdminDep, ReviewerDep, SessionDep, SettingsDep, get_db
from app.errors import ValidationFailed
from app.pagination import CursorQuery, LimitQuery, cursor_position, decode_cursor, encode_cursor
from app.params import AlertId, SilenceId
from app.schemas import Page
from storage.base import utcnow

router = APIRouter(tags=["alerting"])

ChannelName = Annotated[str, Path(description="The channel's name.")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such channel."},
    409: {"description": "Conflict with the channel's state."},
}


def _name_after(cursor: str | None) -> str | None:
    after = decode_cursor(cursor)
    if after is None:
        return None
    if not isinstance(after.get("name"), str):
        raise ValidationFailed.at(["query", "cursor"], "invalid cursor for the list of channels")
    name: str = after["name"]
    return name


def _id_after(cursor: str | None) -> int | None:
    after = decode_cursor(cursor)
    if after is None:
        return None
    value = after.get("id")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationFailed.at(["query", "cursor"], "invalid cursor for this list")
    return value


# --------------------------------------------------------------------------- channels
@router.post(
    "/v1/alert-channels",
    status_code=201,
    response_model=ChannelOut,
    responses={409: {"description": "A channel of that name exists."}},
)
def create_channel(
    body: ChannelCreate, session: SessionDep, _admin: AdminDep, settings: SettingsDep
) -> ChannelOut:
    """Add a channel. The target is checked now (webhook and Slack URLs must not reach
    link-local or metadata addresses, nor private ones unless allowed); webhook channels
    need a `whsec_` signing secret, which is never shown again.

    A webhook channel receives `POST`s signed per the Standard Webhooks spec
    (`webhook-id`, stable across retries and the receiver's idempotency key;
    `webhook-timestamp`; `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`)
    with the JSON body `{"type", "timestamp", "schema_version": 1, "data": {"alert_id",
    "dedup_key", "rule", "model", "severity", "status", "repeat", "title", "summary",
    "fields": [{"name", "value"}], "links"}}`. `type` is the rule and what happened
    (`drift.incident.opened` / `.closed`, `queue.sla.breached` / `.recovered`,
    `queue.backlog.exceeded` / `.recovered`, `queue.staffing.at_risk` / `.held`,
    `data_quality.surge.started` / `.ended`,
    `training_data.ready`, `channel.delivery_failed` / `channel.delivery_recovered`,
    `channel.test`); the firing, reminder and resolved messages of one episode share
    `dedup_key`. Answer 2xx to accept, 410 to be disabled; 5xx, 429 and timeouts are
    retried with backoff (honouring `Retry-After`), other 4xx are dead-lettered."""
    channel = service.create_channel(session, body=body, settings=settings, now=utcnow())
    return service.channel_out(channel)


@router.get("/v1/alert-channels", response_model=Page[ChannelOut])
def list_channels(
    session: SessionDep, _reviewer: ReviewerDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> Page[ChannelOut]:
    """Every channel by name, with targets redacted and secrets counted, never shown."""
    rows = service.list_channels(session, after=_name_after(cursor), limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[ChannelOut](
        items=[service.channel_out(c) for c in rows],
        next_cursor=encode_cursor({"name": rows[-1].name}) if more else None,
    )


@router.patch("/v1/alert-channels/{name}", response_model=ChannelOut, responses=_ERRORS)
def update_channel(
    name: ChannelName,
    body: ChannelUpdate,
    session: SessionDep,
    admin: AdminDep,
    settings: SettingsDep,
) -> ChannelOut:
    """Change a channel: target, filters, rate limit, rotate its signing secrets, or
    enable it again (after a 410 Gone disabled it) or disable it."""
    channel = service.update_channel(
        session, name=name, body=body, settings=settings, actor=admin.actor, now=utcnow()
    )
    return service.channel_out(channel)


@router.delete("/v1/alert-channels/{name}", status_code=204, responses=_ERRORS)
def delete_channel(name: ChannelName, session: SessionDep, _admin: AdminDep) -> Response:
    """Delete a channel. Its past deliveries stay listed in GET /v1/alerts; unsent ones go dead."""
    service.delete_channel(session, name=name, now=utcnow())
    return Response(status_code=204)


@router.post("/v1/alert-channels/{name}/test", response_model=TestResult, responses=_ERRORS)
def send_test_message(
    name: ChannelName, request: Request, _admin: AdminDep, settings: SettingsDep
) -> TestResult:
    """Send a test message now and return what the receiver answered (200 whatever it
    answered: look at `delivered`). Nothing is stored and the channel is not changed."""
    # No request-long session: the send may take the whole timeout, and must not hold
    # SQLite's write lock (or a PostgreSQL connection) meanwhile.
    with get_db(request).session(readonly=True) as session:
        channel = service.get_channel(session, name)
    return service.send_test(channel, settings=settings, now=utcnow())


@router.post("/v1/alert-channels/{name}/replay", response_model=ReplayOut, responses=_ERRORS)
def replay_channel(name: ChannelName, session: SessionDep, _admin: AdminDep) -> ReplayOut:
    """Replay every dead delivery of the channel (after fixing or re-enabling it)."""
    return ReplayOut(replayed=service.replay_channel(session, name=name, now=utcnow()))


# --------------------------------------------------------------------------- alerts
@router.get("/v1/alerts", response_model=Page[AlertOut])
def list_alerts(
    session: SessionDep,
    _reviewer: ReviewerDep,
    status: Annotated[
        Literal["firing", "resolved"] | None, Query(description="Only firing, or resolved, alerts.")
    ] = None,
    model: Annotated[str | None, Query(description="Only alerts about this model.")] = None,
    rule: Annotated[str | None, Query(description="Only this rule, e.g. drift.incident.")] = None,
    delivery_status: Annotated[
        Literal["pending", "sending", "delivered", "dead"] | None,
        Query(description="Only alerts with a delivery in this state (dead: the dead letters)."),
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[AlertOut]:
    """Alerts, newest first, each with every delivery and every attempt of it."""
    after = decode_cursor(cursor)
    rows = service.list_alerts(
        session,
        status=status,
        model=model,
        rule=rule,
        delivery_status=delivery_status,
        after=cursor_position(after) if after is not None else None,
        limit=limit,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        encode_cursor({"ts": rows[-1].created_at.isoformat(), "id": rows[-1].id}) if more else None
    )
    return Page[AlertOut](items=service.alerts_out(session, rows), next_cursor=next_cursor)


@router.get(
    "/v1/alerts/{alert_id}",
    response_model=AlertOut,
    responses={404: {"description": "No such alert."}},
)
def get_alert(alert_id: AlertId, session: SessionDep, _reviewer: ReviewerDep) -> AlertOut:
    """One alert with every delivery and attempt."""
    return service.alerts_out(session, [service.get_alert(session, alert_id)])[0]


@router.post(
    "/v1/alert-deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    responses={
        404: {"description": "No such delivery."},
        409: {"description": "Not dead, or its channel is disabled or deleted."},
    },
)
def replay_delivery(
    delivery_id: Annotated[str, Path(description="The delivery's id (its `webhook-id`).")],
    session: SessionDep,
    _admin: AdminDep,
) -> DeliveryOut:
    """Send a dead delivery again, with the same `webhook-id`, from a fresh set of attempts."""
    delivery = service.replay_delivery(session, webhook_id=delivery_id, now=utcnow())
    return service.delivery_out(delivery, service.history_of(session, delivery))


# --------------------------------------------------------------------------- silences
@router.post(
    "/v1/alert-silences",
    status_code=201,
    response_model=SilenceOut,
    responses={404: {"description": "No such channel."}},
)
def create_silence(body: SilenceCreate, session: SessionDep, admin: AdminDep) -> SilenceOut:
    """Mute a model, a rule, or both, on one channel or on every channel, until a time.

    Muted alerts write no firing message or reminder to that channel; if the alert
    still fires when the silence ends, the channel hears of it at the next reminder
    run. A resolved message still goes to every channel that had the firing one."""
    now = utcnow()
    silence = service.create_silence(session, body=body, actor=admin.actor, now=now)
    return service.silence_out(silence, service.channel_names(session), now)


@router.get("/v1/alert-silences", response_model=Page[SilenceOut])
def list_silences(
    session: SessionDep,
    _reviewer: ReviewerDep,
    active: Annotated[bool, Query(description="Only silences still in force.")] = True,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[SilenceOut]:
    """Silences, newest first."""
    now = utcnow()
    rows = service.list_silences(
        session, active_only=active, now=now, after=_id_after(cursor), limit=limit
    )
    more = len(rows) > limit
    rows = rows[:limit]
    names = service.channel_names(session)
    return Page[SilenceOut](
        items=[service.silence_out(s, names, now) for s in rows],
        next_cursor=encode_cursor({"id": rows[-1].id}) if more else None,
    )


@router.delete(
    "/v1/alert-silences/{silence_id}",
    status_code=204,
    responses={404: {"description": "No such silence."}},
)
def delete_silence(silence_id: SilenceId, session: SessionDep, _admin: AdminDep) -> Response:
    """End a silence now."""
    service.delete_silence(session, silence_id=silence_id)
    return Response(status_code=204)
