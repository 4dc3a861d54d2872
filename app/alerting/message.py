"""One alert message, the value every channel renders, and the webhook payload schema.

An :class:`AlertMessage` is what the outbox stores for one notification: the
first firing message of an incident, a reminder, or the resolved message. The
channels turn it into a Slack Block Kit message, an email, or the signed JSON
body of a generic webhook; none of them needs the database.

Webhook payload (``schema_version`` 1)
--------------------------------------
Every generic webhook is a ``POST`` with ``Content-Type: application/json``, a
UTF-8 body of minified JSON, signed per the Standard Webhooks spec (see
:mod:`app.alerting.signing`). The body is::

    {
      "type": "drift.incident.opened",          // event type, see below
      "timestamp": "2026-11-24T10:00:00Z",      // when the event occurred (RFC 3339, UTC)
      "schema_version": 1,                      // bumped only on a breaking change
      "data": {
        "alert_id": "4711",                     // this notification (stable across retries)
        "dedup_key": "drift.incident:churn-classifier:42",   // one incident / episode
        "rule": "drift.incident",
        "model": "churn-classifier",            // or null for alerts about the service itself
        "severity": "critical",                 // "info" | "warning" | "critical"
        "status": "firing",                     // "firing" | "resolved"
        "repeat": 0,                            // 0 = first notification, n = n-th reminder
        "title": "Drift on churn-classifier: 4 of 12 features",
        "summary": "Free text, several lines.",
        "fields": [{"name": "window", "value": "5000 predictions"}],
        "links": {"tickets": "https://…", "dashboard": "https://…", "report": "https://…"}
      }
    }

Receivers must ignore fields they do not know: new fields may be added within
``schema_version`` 1. The ``webhook-id`` header is the idempotency key: a
receiver that sees the same ``webhook-id`` twice has seen the same delivery
twice (a retry, or a re-send after a crash).

Event types (``type``): the rule name followed by what happened.

================================  ===============================  ==============================
rule                              firing                           resolved
================================  ===============================  ==============================
``drift.incident``                ``drift.incident.opened``        ``drift.incident.closed``
``performance``                   ``performance.degraded``         ``performance.recovered``
``queue.sla``                     ``queue.sla.breached``           ``queue.sla.recovered``
``queue.backlog``                 ``queue.backlog.exceeded``       ``queue.backlog.recovered``
``queue.staffing``                ``queue.staffing.at_risk``       ``queue.staffing.held``
``data_quality.surge``            ``data_quality.surge.started``   ``data_quality.surge.ended``
``training_data.ready``           ``training_data.ready``          (not sent)
``channel.delivery_failed``       ``channel.delivery_failed``      ``channel.delivery_recovered``
``channel.test``                  ``channel.test``                 (not sent)
any other rule ``r``              ``r.firing``                     ``r.resolved``
================================  ===============================  ==============================

>>> from datetime import UTC, datetime
>>> m = AlertMessage(
...     alert_id="1", dedup_key="drift.incident:churn:7", rule="drift.incident",
...     model="churn", severity="critical", status="firing",
...     title="Drift on churn", summary="4 of 12 features drifted.",
...     occurred_at=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
...     fields=[("features drifted", "4 / 12")],
...     links={"ticket": "https://driftdesk.example/ui/tickets/9"},
... )
>>> m.event_type
'drift.incident.opened'
>>> p = m.to_payload()
>>> p["type"], p["timestamp"], p["data"]["fields"]
('drift.incident.opened', '2026-11-24T10:00:00Z', [{'name': 'features drifted', 'value': '4 / 12'}])
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

Severity = Literal["info", "warning", "critical"]
Status = Literal["firing", "resolved"]

SCHEMA_VERSION: Final = 1
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)
STATUSES: Final[tuple[Status, ...]] = get_args(Status)

# Rule names are event-type prefixes, so they follow the Standard Webhooks
# advice for event types: full-stop separated identifiers of [a-zA-Z0-9_].
_RULE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")

_EVENT_TYPES: Final[Mapping[str, tuple[str, str]]] = {
    "drift.incident": ("drift.incident.opened", "drift.incident.closed"),
    "performance": ("performance.degraded", "performance.recovered"),
    "queue.sla": ("queue.sla.breached", "queue.sla.recovered"),
    "queue.backlog": ("queue.backlog.exceeded", "queue.backlog.recovered"),
    "queue.staffing": ("queue.staffing.at_risk", "queue.staffing.held"),
    "data_quality.surge": ("data_quality.surge.started", "data_quality.surge.ended"),
    "training_data.ready": ("training_data.ready", "training_data.ready"),
    "channel.delivery_failed": ("channel.delivery_failed", "channel.delivery_recovered"),
    "channel.test": ("channel.test", "channel.test"),
}


def severity_rank(severity: Severity) -> int:
    """Order severities for ``min_severity`` filters.

    >>> severity_rank("info") < severity_rank("warning") < severity_rank("critical")
    True
    """
    return SEVERITIES.index(severity)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, the form the API uses everywhere.

    >>> format_timestamp(datetime(2026, 11, 24, 10, 0, 0, 250000, tzinfo=UTC))
    '2026-11-24T10:00:00.250000Z'
    """
    if moment.tzinfo is None:
        raise ValueError("a timestamp needs a time zone")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """One notification about one incident, as every channel renders it.

    ``dedup_key`` names one *episode* (an incident, or one stretch of a queue
    over its SLA): the firing, reminder and resolved messages of an episode
    share it, and a new episode needs a new key (include the incident id or
    the time the episode began). Email threading relies on this.

    ``links`` values must be absolute ``http(s)`` URLs; they become buttons
    and ``href`` attributes, so nothing else is accepted.
    """

    alert_id: str
    dedup_key: str
    rule: str
    model: str | None
    severity: Severity
    status: Status
    title: str
    summary: str
    occurred_at: datetime
    fields: Sequence[tuple[str, str]] = ()
    links: Mapping[str, str] = field(default_factory=dict, hash=False)
    repeat: int = 0

    def __post_init__(self) -> None:
        if not self.alert_id:
            raise ValueError("alert_id is required")
        if not self.dedup_key:
            raise ValueError("dedup_key is required")
        if not _RULE.match(self.rule):
            raise ValueError(
                f"rule {self.rule!r} must be dot-separated lower-case identifiers, "
                "like 'drift.incident'"
            )
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at needs a time zone")
        if self.repeat < 0:
            raise ValueError("repeat counts reminders and cannot be negative")
        fields = tuple((str(name), str(value)) for name, value in self.fields)
        for name, url in self.links.items():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"link {name!r} must be an absolute http(s) URL")
        # Frozen all the way down: a message is shared by every channel it goes to.
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "links", MappingProxyType(dict(self.links)))

    @property
    def event_type(self) -> str:
        """The webhook ``type``: see the table in the module docstring."""
        known = _EVENT_TYPES.get(self.rule)
        if known is not None:
            return known[0] if self.status == "firing" else known[1]
        return f"{self.rule}.{self.status}"

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"

    def to_payload(self) -> dict[str, Any]:
        """The JSON document a generic webhook receives (schema in the module docstring)."""
        return {
            "type": self.event_type,
            "timestamp": format_timestamp(self.occurred_at),
            "schema_version": SCHEMA_VERSION,
            "data": {
                "alert_id": self.alert_id,
                "dedup_key": self.dedup_key,
                "rule": self.rule,
                "model": self.model,
                "severity": self.severity,
                "status": self.status,
                "repeat": self.repeat,
                "title": self.title,
                "summary": self.summary,
                "fields": [{"name": name, "value": value} for name, value in self.fields],
                "links": dict(self.links),
            },
        }

    def to_json_bytes(self) -> bytes:
        """The payload as sent: minified UTF-8 JSON, the exact bytes that are signed."""
        return json.dumps(
            self.to_payload(), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")


def make_test_message(*, channel_name: str, now: datetime, alert_id: str) -> AlertMessage:
    """The message ``POST /v1/alert-channels/{name}/test`` sends.

    >>> m = make_test_message(channel_name="oncall", now=datetime(2026, 1, 1, tzinfo=UTC),
    ...                       alert_id="test-1")
    >>> m.event_type, m.severity
    ('channel.test', 'info')
    """
    return AlertMessage(
        alert_id=alert_id,
        dedup_key=f"channel.test:{channel_name}:{alert_id}",
        rule="channel.test",
        model=None,
        severity="info",
        status="firing",
        title=f"Test message for channel {channel_name}",
        summary=(
            "driftdesk can reach this channel. Drift incidents and queue alerts "
            "will arrive here like this message."
        ),
        occurred_at=now,
        fields=(("channel", channel_name),),
    )
