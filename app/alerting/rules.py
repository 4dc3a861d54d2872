"""What raises an alert, and the alert-rules loop.

Raised by the flows, inside the transaction of what happened
(:mod:`app.drift.flows`, :mod:`app.tickets.flows`):

- ``drift.incident``: an incident opened (its severity) / closed (resolved);
- ``performance``: a performance incident opened (``performance.degraded``) /
  closed (``performance.recovered``);
- ``training_data.ready``: enough new labels to retrain on (a notice).

Raised by the dispatcher when it gives up on a delivery:

- ``channel.delivery_failed``: a channel's delivery went dead, reported on the
  other channels; resolved by the channel's next successful delivery.

Raised by :func:`run_alert_rules` (a background loop, once cluster-wide),
from the queue's own read functions:

- ``queue.sla``: a model's oldest waiting ticket is past its SLA;
- ``queue.backlog``: a model's waiting tickets exceed ``alert_queue_backlog``
  (resolved below 90% of it, so a queue hovering at the line does not flap);
- ``queue.staffing``: the workforce forecast (:mod:`app.workforce.service`) says a
  ticket of the model will breach its SLA within ``workforce_lead_time_seconds``
  at the current staffing — before it happens — with the reviewers who would
  hold it; resolved once the forecast sees no breach within the lead time;
- ``data_quality.surge``: a model's data-quality problems (records in its
  data-quality tickets) in an hour reach ``alert_data_quality_surge`` (resolved
  once neither this hour nor the last did).

The same loop writes reminders of what is still firing (:func:`app.alerting.outbox.remind`).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from app.alerting import outbox, repository
from app.alerting.message import Severity, format_timestamp
from app.alerting.tables import AlertChannel, AlertDelivery
from app.db import Database
from app.drift.events import IncidentClosed, IncidentOpened
from app.performance.events import PerformanceDegraded, PerformanceRecovered
from app.settings import Settings
from app.workforce import service as workforce
from exceptions_queue import repository as queue
from exceptions_queue.resolving import RetrainingReady
from storage.base import utcnow
from storage.sql import LockKey, advisory_lock
from storage.tables import MonitoredModel

log = logging.getLogger("driftdesk.alerting")

FEATURES_SHOWN: Final = 8
BACKLOG_RESOLVE_SHARE: Final = 0.9
QUEUE_RULES: Final = ("queue.sla", "queue.backlog", "queue.staffing", "data_quality.surge")


def _since(started: dt.datetime, now: dt.datetime) -> str:
    minutes = max(0, int((now - started).total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours or days else []
    return " ".join([*parts, f"{minutes}m"])


def _episode(now: dt.datetime) -> str:
    """A new episode of a condition: when it began, made unique (a clock can repeat)."""
    return f"{format_timestamp(now)}-{secrets.token_hex(3)}"


def _links(settings: Settings, model: str, **extra: str) -> dict[str, str]:
    base = settings.public_url.rstrip("/")
    return {**{k: base + v for k, v in extra.items()}, "dashboard": f"{base}/ui/models/{model}"}


def _queue(model: str, **filters: str) -> str:
    """The reviewers' queue page for ``model``: where a person clicking an alert can act.

    (The API's /v1/tickets needs a bearer key, which a browser does not send.)
    """
    return "/ui/queue?" + urlencode({"model": model, **filters})


# --------------------------------------------------------------------------- drift
def drift_key(model: str) -> str:
    return f"drift.incident:{model}"


def _drift_fields(event: IncidentOpened) -> list[tuple[str, str]]:
    """The incident's figures, and its most drifted features (strongest first) with theirs."""
    evaluation = event.evaluation
    features = [f for f in evaluation.get("features", []) if f.get("drifted")]
    features.sort(key=lambda f: -(f.get("effect") or 0) / (f.get("threshold") or 1))
    total = len(evaluation.get("features", []))
    fields: list[tuple[str, str]] = [
        ("features drifted", f"{len(features)} / {total}"),
        ("window", f"{evaluation.get('rows', '?')} predictions"),
        ("incident", str(event.incident_id)),
    ]
    for f in features[:FEATURES_SHOWN]:
        fields.append(
            (
                str(f["name"]),
                f"{f.get('detector', '?')} effect {f.get('effect', 0):.3g} "
                f"(threshold {f.get('threshold', 0):.3g})",
            )
        )
    return fields


def drift_opened(session: Session, event: IncidentOpened, *, settings: Settings) -> None:
    """An incident opened: fire ``drift.incident`` with the incident's severity."""
    names = list(event.drifted_features)
    shown = ", ".join(names[:FEATURES_SHOWN]) + (
        f" and {len(names) - FEATURES_SHOWN} more" if len(names) > FEATURES_SHOWN else ""
    )
    window = ""
    if event.window_start and event.window_end:
        window = (
            f" in the window {format_timestamp(event.window_start)} to "
            f"{format_timestamp(event.window_end)}"
        )
    links = _links(
        settings,
        event.model_name,
        # the queue opens the incident's drift ticket in this same transaction
        tickets=_queue(event.model_name, kind="drift"),
        report=f"/ui/models/{event.model_name}/evaluations/{event.evaluation_id}/report",
    )
    stale = outbox.firing(session, group_key=drift_key(event.model_name))
    if stale is not None:  # its close was never seen (raised before alerting existed)
        outbox.resolve(
            session,
            now=event.at,
            dedup_key=stale.dedup_key,
            title=f"Drift on {event.model_name}: superseded by incident {event.incident_id}",
            summary="A new incident opened; this alert continues there.",
        )
    outbox.fire(
        session,
        outbox.AlertSpec(
            rule="drift.incident",
            subject=event.model_name,
            episode=str(event.incident_id),
            severity="critical" if event.severity == "critical" else "warning",
            title=f"Drift on {event.model_name}: {shown or 'the model output'}",
            summary=(
                f"Drift incident {event.incident_id} opened on {event.model_name}: "
                f"{shown or 'the model output'} drifted{window}. A drift ticket with "
                "predictions to label is in the queue."
            ),
            model_id=event.model_id,
            model_name=event.model_name,
            fields=_drift_fields(event),
            links=links,
        ),
        now=event.at,
    )


def drift_closed(session: Session, event: IncidentClosed) -> None:
    """The incident closed: the resolved message, threaded with the firing one."""
    outbox.resolve(
        session,
        now=event.at,
        dedup_key=f"{drift_key(event.model_name)}:{event.incident_id}",
        title=f"Drift on {event.model_name} is over",
        summary=(
            f"Drift incident {event.incident_id} on {event.model_name} closed: the latest "
            f"windows match the reference again. It was open for "
            f"{_since(event.opened_at, event.at)}."
        ),
        fields=[
            ("incident", str(event.incident_id)),
            ("open for", _since(event.opened_at, event.at)),
        ],
    )


# --------------------------------------------------------------------------- performance
def performance_key(model: str) -> str:
    return f"performance:{model}"


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"


def performance_degraded(
    session: Session, event: PerformanceDegraded, *, settings: Settings
) -> None:
    """A performance incident opened: fire ``performance.degraded`` with the numbers."""
    interval = (
        f" (95% interval {_num(event.ci_low)} to {_num(event.ci_high)})"
        if event.ci_low is not None
        else ""
    )
    window = ""
    if event.window_start and event.window_end:
        window = (
            f" in the window {format_timestamp(event.window_start)} to "
            f"{format_timestamp(event.window_end)}"
        )
    fields: list[tuple[str, str]] = [
        (event.metric, f"{_num(event.value)}{interval}"),
        ("bound", _num(event.bound)),
        ("reference", _num(event.reference)),
        ("judged by", event.source),
        ("window", f"{event.rows} predictions"),
        ("incident", str(event.incident_id)),
    ]
    outbox.fire(
        session,
        outbox.AlertSpec(
            rule="performance",
            subject=event.model_name,
            episode=str(event.incident_id),
            severity="critical" if event.severity == "critical" else "warning",
            title=(
                f"{event.model_name}'s {event.metric} degraded: {_num(event.value)} "
                f"(bound {_num(event.bound)})"
            ),
            summary=(
                f"Performance incident {event.incident_id} opened on {event.model_name}: "
                f"{event.metric} {_num(event.value)}{interval} by the {event.source} estimate"
                f"{window}, past the bound {_num(event.bound)} (reference "
                f"{_num(event.reference)})."
            ),
            model_id=event.model_id,
            model_name=event.model_name,
            fields=fields,
            links=_links(
                settings,
                event.model_name,
                performance=f"/v1/models/{event.model_name}/performance",
            ),
        ),
        now=event.at,
    )


def performance_recovered(session: Session, event: PerformanceRecovered) -> None:
    """The incident closed: the resolved message, threaded with the firing one."""
    outbox.resolve(
        session,
        now=event.at,
        dedup_key=f"{performance_key(event.model_name)}:{event.incident_id}",
        title=f"{event.model_name}'s {event.metric} recovered: {_num(event.value)}",
        summary=(
            f"Performance incident {event.incident_id} on {event.model_name} closed: "
            f"{event.metric} is {_num(event.value)}, within the bound {_num(event.bound)} "
            f"again. It was open for {_since(event.opened_at, event.at)}."
        ),
        fields=[
            (event.metric, _num(event.value)),
            ("incident", str(event.incident_id)),
            ("open for", _since(event.opened_at, event.at)),
        ],
    )


# --------------------------------------------------------------------------- retraining
def training_ready(session: Session, event: RetrainingReady, *, settings: Settings) -> None:
    """Enough new labels for a retrain: an ``info`` notice (no reminder, nothing to resolve)."""
    since = f" since {format_timestamp(event.since)}" if event.since else ""
    base = settings.public_url.rstrip("/")
    export = f"{base}{event.export_path}"
    if event.since:
        export += f"?since={format_timestamp(event.since)}"
    outbox.fire(
        session,
        outbox.AlertSpec(
            rule="training_data.ready",
            subject=event.model_name,
            episode=format_timestamp(event.at),
            severity="info",
            title=f"Retraining data ready for {event.model_name}: {event.new_labels} new labels",
            summary=(
                f"Reviewers labelled {event.new_labels} predictions of {event.model_name}"
                f"{since} ({event.total_labels} in all). Export them for retraining."
            ),
            model_id=event.model_id,
            model_name=event.model_name,
            fields=[("new labels", str(event.new_labels)), ("labels", str(event.total_labels))],
            links={"export": export},
            notice=True,
        ),
        now=event.at,
    )


# --------------------------------------------------------------------------- channels
def channel_key(channel_name: str) -> str:
    return f"channel.delivery_failed:{channel_name}"


def channel_failed(
    session: Session,
    *,
    channel: AlertChannel,
    delivery: AlertDelivery,
    error: str,
    disabled: bool,
    now: dt.datetime,
) -> None:
    """A delivery to ``channel`` went dead: tell the other channels (once per failing stretch)."""
    title = delivery.message.get("title", "")
    what = (
        "and the channel was disabled (the receiver answered 410 Gone)"
        if disabled
        else f"after {delivery.attempts} attempt(s)"
    )
    outbox.fire(
        session,
        outbox.AlertSpec(
            rule="channel.delivery_failed",
            subject=channel.name,
            episode=_episode(now),
            severity="critical" if disabled else "warning",
            title=f"Alerts to channel {channel.name} are not getting through",
            summary=(
                f"A {delivery.notification} message ({title}) could not be delivered to the "
                f"{channel.kind} channel {channel.name} {what}: {error}. It is kept as dead "
                f"delivery {delivery.webhook_id}; replay it with "
                f"POST /v1/alert-deliveries/{delivery.webhook_id}/replay once the channel works."
            ),
            fields=[
                ("channel", channel.name),
                ("delivery", delivery.webhook_id),
                ("last status", str(delivery.last_status_code or "none")),
            ],
            exclude_channel_id=channel.id,
        ),
        now=now,
    )


def channel_recovered(session: Session, *, channel: AlertChannel, now: dt.datetime) -> None:
    """A delivery to ``channel`` succeeded: resolve its failure report, if one is firing."""
    if outbox.firing(session, group_key=channel_key(channel.name)) is None:
        return
    outbox.resolve(
        session,
        now=now,
        group_key=channel_key(channel.name),
        title=f"Alerts to channel {channel.name} are getting through again",
        summary=f"The {channel.kind} channel {channel.name} accepted a message again.",
        fields=[("channel", channel.name)],
    )


# --------------------------------------------------------------------------- the queue
def _fire_or_resolve(
    session: Session,
    *,
    rule: str,
    model: MonitoredModel,
    queue_filters: dict[str, str],
    bad: bool,
    good: bool,
    severity: Severity,
    title: str,
    summary: str,
    fields: Sequence[tuple[str, str]],
    resolved_title: str,
    settings: Settings,
    now: dt.datetime,
) -> int:
    group = f"{rule}:{model.name}"
    current = outbox.firing(session, group_key=group)
    if bad and current is None:
        fired = outbox.fire(
            session,
            outbox.AlertSpec(
                rule=rule,
                subject=model.name,
                episode=_episode(now),
                severity=severity,
                title=title,
                summary=summary,
                model_id=model.id,
                model_name=model.name,
                fields=fields,
                links=_links(settings, model.name, tickets=_queue(model.name, **queue_filters)),
            ),
            now=now,
        )
        return 1 if fired is not None else 0
    if good and current is not None:
        outbox.resolve(
            session,
            now=now,
            group_key=group,
            title=resolved_title,
            summary=resolved_title + ".",
            fields=fields,
        )
        return 1
    return 0


@dataclass(frozen=True)
class _QueueState:
    """One model's queue as the rules see it."""

    waiting: int = 0  # open tickets
    overdue: int = 0  # of those, past their SLA
    oldest: dt.datetime | None = None  # when the oldest of them was opened
    surge: int = 0  # records with data-quality problems in this hour or the last, the larger


def _queue_states(session: Session, *, now: dt.datetime) -> dict[int, _QueueState]:
    """Every model's open tickets (from the queue's own counts) and data-quality surge."""
    waiting: dict[int, int] = defaultdict(int)
    overdue: dict[int, int] = defaultdict(int)
    oldest: dict[int, dt.datetime] = {}
    for model_id, _kind, status, tickets, late, first in queue.queue_counts(session, now=now):
        if status != "open":
            continue
        waiting[model_id] += tickets
        overdue[model_id] += late
        if first is not None and (model_id not in oldest or first < oldest[model_id]):
            oldest[model_id] = first
    surge = _data_quality_surge(session, now=now)
    return {
        model_id: _QueueState(
            waiting=waiting.get(model_id, 0),
            overdue=overdue.get(model_id, 0),
            oldest=oldest.get(model_id),
            surge=surge.get(model_id, 0),
        )
        for model_id in waiting.keys() | surge.keys()
    }


def _data_quality_surge(session: Session, *, now: dt.datetime) -> dict[int, int]:
    """Per model, the records with a data-quality problem in this hour or the last (the larger).

    Data-quality tickets are grouped per feature and hour; their ``count`` is the
    records with a problem.
    """
    hour = now.replace(minute=0, second=0, microsecond=0)
    per_hour: dict[tuple[int, dt.datetime], int] = defaultdict(int)
    for model_id, created, count in repository.data_quality_counts(
        session, since=hour - dt.timedelta(hours=1)
    ):
        per_hour[(model_id, created.replace(minute=0, second=0, microsecond=0))] += int(count)
    surge: dict[int, int] = defaultdict(int)
    for (model_id, _hour), count in per_hour.items():
        surge[model_id] = max(surge[model_id], count)
    return surge


def _sla(
    session: Session, model: MonitoredModel, q: _QueueState, settings: Settings, now: dt.datetime
) -> int:
    since = _since(q.oldest, now) if q.oldest is not None else "-"
    return _fire_or_resolve(
        session,
        rule="queue.sla",
        model=model,
        queue_filters={"status": "open"},  # oldest first, each with its SLA state
        bad=q.overdue > 0,
        good=q.overdue == 0,
        severity="warning",
        title=f"Tickets of {model.name} are waiting past their SLA",
        summary=(
            f"{q.overdue} waiting ticket(s) of {model.name} are past their SLA; the oldest "
            f"has waited {since}. Claim them in the queue."
        ),
        fields=[
            ("past SLA", str(q.overdue)),
            ("waiting", str(q.waiting)),
            ("oldest waiting", since),
        ],
        resolved_title=f"No ticket of {model.name} is waiting past its SLA",
        settings=settings,
        now=now,
    )


def _backlog(
    session: Session, model: MonitoredModel, q: _QueueState, settings: Settings, now: dt.datetime
) -> int:
    n, backlog = q.waiting, settings.alert_queue_backlog
    return _fire_or_resolve(
        session,
        rule="queue.backlog",
        model=model,
        queue_filters={"status": "open"},
        bad=n > backlog,
        good=n < backlog * BACKLOG_RESOLVE_SHARE,
        severity="warning",
        title=f"{n} tickets of {model.name} are waiting (threshold {backlog})",
        summary=(
            f"The queue of {model.name} holds {n} waiting tickets, above the threshold "
            f"of {backlog}. Reviewers are not keeping up."
        ),
        fields=[("waiting", str(n)), ("threshold", str(backlog))],
        resolved_title=f"The queue of {model.name} is back below {backlog} tickets",
        settings=settings,
        now=now,
    )


def _surge(
    session: Session, model: MonitoredModel, q: _QueueState, settings: Settings, now: dt.datetime
) -> int:
    count, dq = q.surge, settings.alert_data_quality_surge
    return _fire_or_resolve(
        session,
        rule="data_quality.surge",
        model=model,
        queue_filters={"kind": "data_quality"},
        bad=count >= dq,
        good=count < dq,
        severity="warning",
        title=f"Surge of data-quality problems on {model.name}",
        summary=(
            f"{count} predictions of {model.name} with data-quality problems within an "
            f"hour (threshold {dq}): missing, out-of-range or unseen feature values. "
            "Check the upstream data."
        ),
        fields=[("records in an hour", str(count)), ("threshold", str(dq))],
        resolved_title=f"Data-quality problems on {model.name} are back to normal",
        settings=settings,
        now=now,
    )


def _minutes(minutes: float) -> str:
    m = max(0, round(minutes))
    return f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def _staffing_summary(risk: workforce.StaffingRisk) -> str:
    """'the oldest low_confidence ticket of churn breaches its 4 h SLA in 35 min at 3 reviewers; 5 hold it'."""
    which = "the oldest waiting" if risk.already_waiting else "an arriving"
    people = f"{risk.reviewers} reviewer{'' if risk.reviewers == 1 else 's'}"
    return (
        f"Forecast: {which} {risk.kind} ticket of {risk.model} breaches its {risk.sla_hours:g} h "
        f"SLA in {_minutes(risk.in_minutes)} at {people}; {risk.needed} hold it. "
        "Add reviewers or claim these tickets now."
    )


def _staffing(
    session: Session,
    model: MonitoredModel,
    risk: workforce.StaffingRisk | None,
    settings: Settings,
    now: dt.datetime,
) -> int:
    return _fire_or_resolve(
        session,
        rule="queue.staffing",
        model=model,
        queue_filters={"status": "open"},
        bad=risk is not None,
        good=risk is None,
        severity="warning",
        title=(
            f"Tickets of {model.name} will breach their SLA in {_minutes(risk.in_minutes)}"
            if risk
            else ""
        ),
        summary=_staffing_summary(risk) if risk else "",
        fields=(
            [
                ("kind", risk.kind),
                ("SLA", f"{risk.sla_hours:g} h"),
                ("breach in", _minutes(risk.in_minutes)),
                ("reviewers now", str(risk.reviewers)),
                ("reviewers needed", str(risk.needed)),
            ]
            if risk
            else []
        ),
        resolved_title=f"The forecast sees no SLA breach of {model.name} within the lead time",
        settings=settings,
        now=now,
    )


def _close_unmonitored(session: Session, *, active: set[str], now: dt.datetime) -> int:
    """A model archived while its queue alert fires: nothing will ever resolve it otherwise."""
    closed = 0
    for rule in QUEUE_RULES:
        for alert in repository.firing_alerts(session, rule=rule):
            if alert.model_name not in active:
                outbox.resolve(
                    session,
                    now=now,
                    dedup_key=alert.dedup_key,
                    title=f"{alert.model_name} is no longer monitored",
                    summary=f"The model {alert.model_name} was archived; this alert is closed.",
                )
                closed += 1
    return closed


def queue_rules(session: Session, *, settings: Settings, now: dt.datetime) -> int:
    """Check every active model's queue; returns how many alerts fired or resolved."""
    states = _queue_states(session, now=now)
    models = repository.active_models(session)
    risks = workforce.staffing_risks(session, now=now, settings=settings)
    changed = 0
    for model in models:
        q = states.get(model.id, _QueueState())
        for rule in (_sla, _backlog, _surge):
            changed += rule(session, model, q, settings, now)
        changed += _staffing(session, model, risks.get(model.name), settings, now)
    return changed + _close_unmonitored(session, active={m.name for m in models}, now=now)


# --------------------------------------------------------------------------- the loop
def _leader(session: Session) -> bool:
    """Only one process runs the rules at a time (SQLite writers are serialised already)."""
    return advisory_lock(session, LockKey.ALERT_RULES)


def run_alert_rules(db: Database, settings: Settings, *, now: dt.datetime | None = None) -> int:
    """The loop's step: queue rules, then reminders of what is still firing."""
    clock = now or utcnow()
    with db.session() as session:
        if not _leader(session):
            return 0
        changed = queue_rules(session, settings=settings, now=clock)
        changed += outbox.remind(
            session,
            now=clock,
            repeat_interval=dt.timedelta(seconds=settings.alert_repeat_interval_seconds),
        )
    return changed
