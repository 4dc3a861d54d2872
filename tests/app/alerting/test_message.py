from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from app.alerting.message import AlertMessage, make_test_message, severity_rank

MakeMessage = Callable[..., AlertMessage]


def test_payload_follows_the_documented_schema(make_message: MakeMessage) -> None:
    message = make_message(repeat=2)
    payload = json.loads(message.to_json_bytes())
    assert payload == {
        "type": "drift.incident.opened",
        "timestamp": "2026-11-24T10:00:00Z",
        "schema_version": 1,
        "data": {
            "alert_id": "4711",
            "dedup_key": "drift.incident:churn-classifier:42",
            "rule": "drift.incident",
            "model": "churn-classifier",
            "severity": "critical",
            "status": "firing",
            "repeat": 2,
            "title": "Drift on churn-classifier: 4 of 12 features",
            "summary": "age, plan, tenure and region drifted (PSI up to 0.31).",
            "fields": [
                {"name": "features drifted", "value": "4 / 12"},
                {"name": "window", "value": "5000 predictions"},
            ],
            "links": {
                "ticket": "https://driftdesk.example/ui/tickets/9",
                "dashboard": "https://driftdesk.example/ui/models/churn-classifier",
                "report": "https://driftdesk.example/v1/models/churn-classifier/drift/report?evaluation=77",
            },
        },
    }


def test_body_is_minified_utf8_and_deterministic(make_message: MakeMessage) -> None:
    message = make_message(title="Dérive sur « churn » ✓")
    body = message.to_json_bytes()
    assert body == make_message(title="Dérive sur « churn » ✓").to_json_bytes()
    minified = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    assert body == minified.encode("utf-8")
    assert "Dérive sur « churn » ✓".encode() in body


@pytest.mark.parametrize(
    ("rule", "status", "event_type"),
    [
        ("drift.incident", "firing", "drift.incident.opened"),
        ("drift.incident", "resolved", "drift.incident.closed"),
        ("queue.sla", "firing", "queue.sla.breached"),
        ("queue.backlog", "resolved", "queue.backlog.recovered"),
        ("data_quality.surge", "firing", "data_quality.surge.started"),
        ("training_data.ready", "firing", "training_data.ready"),
        ("channel.delivery_failed", "firing", "channel.delivery_failed"),
        ("custom.rule", "resolved", "custom.rule.resolved"),
    ],
)
def test_event_types(make_message: MakeMessage, rule: str, status: str, event_type: str) -> None:
    assert make_message(rule=rule, status=status).event_type == event_type


def test_timestamps_are_utc_with_z(make_message: MakeMessage) -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    message = make_message(occurred_at=dt.datetime(2026, 11, 24, 11, 0, tzinfo=paris))
    assert message.to_payload()["timestamp"] == "2026-11-24T10:00:00Z"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"severity": "urgent"}, "severity"),
        ({"status": "open"}, "status"),
        ({"occurred_at": dt.datetime(2026, 11, 24, 10, 0)}, "time zone"),
        ({"rule": "Drift Incident"}, "rule"),
        ({"rule": "drift."}, "rule"),
        ({"dedup_key": ""}, "dedup_key"),
        ({"alert_id": ""}, "alert_id"),
        ({"repeat": -1}, "repeat"),
        ({"links": {"ticket": "javascript:alert(1)"}}, "ticket"),
        ({"links": {"report": "/relative/path"}}, "report"),
    ],
)
def test_invalid_messages_are_refused(
    make_message: MakeMessage, overrides: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        make_message(**overrides)


def test_messages_are_immutable_and_hashable(make_message: MakeMessage) -> None:
    fields = [("a", "1")]
    links = {"ticket": "https://driftdesk.example/t/1"}
    message = make_message(fields=fields, links=links)
    fields.append(("b", "2"))
    links["dashboard"] = "https://driftdesk.example/d"
    assert message.fields == (("a", "1"),)
    assert dict(message.links) == {"ticket": "https://driftdesk.example/t/1"}
    with pytest.raises(TypeError):
        message.links["x"] = "https://x.example"  # type: ignore[index]
    with pytest.raises(AttributeError):
        message.title = "changed"  # type: ignore[misc]
    assert hash(message) == hash(make_message(fields=[("a", "1")], links=links))


def test_severity_order() -> None:
    assert sorted(["critical", "info", "warning"], key=severity_rank) == [  # type: ignore[arg-type]
        "info",
        "warning",
        "critical",
    ]


def test_channel_test_message() -> None:
    now = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
    message = make_test_message(channel_name="oncall", now=now, alert_id="t-1")
    assert message.event_type == "channel.test"
    assert message.severity == "info"
    assert "oncall" in message.title
    assert (
        message.dedup_key
        != make_test_message(channel_name="oncall", now=now, alert_id="t-2").dedup_key
    )
