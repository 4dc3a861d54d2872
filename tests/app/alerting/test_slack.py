"""Slack Block Kit messages: structure, Slack's limits, and sending to a real receiver."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from app.alerting.message import AlertMessage
from app.alerting.outcome import Outcome
from app.alerting.slack import build_payload, send_slack

from .conftest import Receiver, Reply

MakeMessage = Callable[..., AlertMessage]


def units(text: str) -> int:
    """UTF-16 code units, the strictest way Slack could count."""
    return len(text.encode("utf-16-le")) // 2


def assert_within_slack_limits(payload: dict[str, Any]) -> None:
    """Slack's documented limits, checked block by block."""
    assert isinstance(payload["text"], str) and 0 < units(payload["text"]) <= 300
    blocks = payload["blocks"]
    assert 0 < len(blocks) <= 50
    total = 0
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < units(block["text"]["text"]) <= 150
            total += units(block["text"]["text"])
        elif kind == "section":
            assert ("text" in block) or ("fields" in block)
            if "text" in block:
                assert 0 < units(block["text"]["text"]) <= 3000
                total += units(block["text"]["text"])
            if "fields" in block:
                assert 0 < len(block["fields"]) <= 10
                for item in block["fields"]:
                    assert item["type"] == "mrkdwn"
                    assert 0 < units(item["text"]) <= 2000
                    total += units(item["text"])
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
            for element in block["elements"]:
                assert 0 < units(element["text"]) <= 3000
                total += units(element["text"])
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= 25
            ids = [button["action_id"] for button in block["elements"]]
            assert len(ids) == len(set(ids))
            for button in block["elements"]:
                assert button["type"] == "button"
                assert 0 < units(button["text"]["text"]) <= 75
                assert 0 < units(button["url"]) <= 3000
                total += units(button["text"]["text"]) + units(button["url"])
        else:
            pytest.fail(f"unexpected block type {kind}")
    # Slack's undocumented total (msg_blocks_too_long) is reported near 13,000.
    assert total <= 12_500
    assert len(json.dumps(payload)) < 40_000


def test_structure_of_a_firing_message(make_message: MakeMessage) -> None:
    payload = build_payload(make_message())
    assert_within_slack_limits(payload)
    assert (
        payload["text"]
        == "[CRITICAL] Drift on churn-classifier: 4 of 12 features (churn-classifier)"
    )
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds == ["header", "section", "section", "actions", "context"]
    header, summary, fields, actions, context = payload["blocks"]
    assert header["text"]["text"] == "🔴 CRITICAL: Drift on churn-classifier: 4 of 12 features"
    assert summary["text"] == {
        "type": "mrkdwn",
        "text": "age, plan, tenure and region drifted (PSI up to 0.31).",
    }
    assert [f["text"] for f in fields["fields"]] == [
        "*features drifted*\n4 / 12",
        "*window*\n5000 predictions",
    ]
    assert [(b["text"]["text"], b["url"]) for b in actions["elements"]] == [
        ("Open ticket", "https://driftdesk.example/ui/tickets/9"),
        ("Dashboard", "https://driftdesk.example/ui/models/churn-classifier"),
        (
            "Drift report",
            "https://driftdesk.example/v1/models/churn-classifier/drift/report?evaluation=77",
        ),
    ]
    context_text = " ".join(e["text"] for e in context["elements"])
    assert "*Model:* churn-classifier" in context_text
    assert "*Rule:* drift.incident" in context_text
    assert "<!date^1795514400^" in context_text and "|2026-11-24T10:00:00+00:00>" in context_text
    assert payload["unfurl_links"] is False


def test_a_resolved_message_is_visibly_resolved(make_message: MakeMessage) -> None:
    payload = build_payload(
        make_message(status="resolved", title="Drift on churn-classifier ended")
    )
    assert_within_slack_limits(payload)
    assert payload["text"].startswith("[RESOLVED] ")
    header = payload["blocks"][0]["text"]["text"]
    assert header == "✅ RESOLVED: Drift on churn-classifier ended"
    assert "🔴" not in json.dumps(payload, ensure_ascii=False)
    context_text = " ".join(e["text"] for e in payload["blocks"][-1]["elements"])
    assert "Resolved <!date^" in context_text


def test_reminders_say_so(make_message: MakeMessage) -> None:
    payload = build_payload(make_message(repeat=3, severity="warning"))
    assert payload["blocks"][0]["text"]["text"].startswith("🟠 WARNING: ")
    assert "Reminder 3" in [e["text"] for e in payload["blocks"][-1]["elements"]]


def test_mrkdwn_control_characters_are_escaped(make_message: MakeMessage) -> None:
    payload = build_payload(
        make_message(
            summary="p < 0.01 & effect > 0.2 <!channel> <https://evil.example|click>",
            fields=[("a<b", "x&y")],
        )
    )
    summary = payload["blocks"][1]["text"]["text"]
    assert summary == (
        "p &lt; 0.01 &amp; effect &gt; 0.2 &lt;!channel&gt; &lt;https://evil.example|click&gt;"
    )
    assert payload["blocks"][2]["fields"][0]["text"] == "*a&lt;b*\nx&amp;y"


def test_a_huge_message_stays_within_every_limit(make_message: MakeMessage) -> None:
    message = make_message(
        title="T" * 1000,
        summary="S" * 100_000,
        fields=[(f"feature_{i}" * 20, "v" * 5000) for i in range(30)],
        links={f"link_{i}": "https://driftdesk.example/" + "p" * 100 for i in range(40)},
    )
    payload = build_payload(message)
    assert_within_slack_limits(payload)
    header = payload["blocks"][0]["text"]["text"]
    assert units(header) == 150 and header.endswith("…")
    summary = payload["blocks"][1]["text"]["text"]
    assert units(summary) == 3000 and summary.endswith("…")
    shown = sum(len(b.get("fields", [])) for b in payload["blocks"])
    context_text = " ".join(e["text"] for e in payload["blocks"][-1]["elements"])
    assert 0 < shown < 30
    assert f"{30 - shown} more field(s) in the ticket" in context_text
    actions = next(b for b in payload["blocks"] if b["type"] == "actions")
    assert len(actions["elements"]) == 25
    assert "15 link(s) not shown" in context_text


def test_thirty_short_fields_are_all_shown_in_sections_of_ten(make_message: MakeMessage) -> None:
    payload = build_payload(make_message(fields=[(f"f{i}", str(i)) for i in range(30)]))
    assert_within_slack_limits(payload)
    sections = [b for b in payload["blocks"] if "fields" in b]
    assert [len(s["fields"]) for s in sections] == [10, 10, 10]
    assert sections[2]["fields"][-1]["text"] == "*f29*\n29"


def test_a_thousand_fields_stay_under_fifty_blocks(make_message: MakeMessage) -> None:
    payload = build_payload(make_message(fields=[(f"f{i}", "x") for i in range(1000)]))
    assert_within_slack_limits(payload)


def test_emoji_are_counted_as_slack_may_count_them(make_message: MakeMessage) -> None:
    payload = build_payload(make_message(title="🔥" * 200, summary="📉" * 5000))
    assert_within_slack_limits(payload)
    # No emoji is cut in half (a lone surrogate would not even encode).
    json.dumps(payload, ensure_ascii=False).encode("utf-8")


def test_an_escape_is_never_cut_in_half(make_message: MakeMessage) -> None:
    summary = build_payload(make_message(summary="&" * 3000))["blocks"][1]["text"]["text"]
    assert summary.endswith("&amp;…")
    assert units(summary) <= 3000


def test_a_link_too_long_for_a_button_is_left_out(make_message: MakeMessage) -> None:
    long_url = "https://driftdesk.example/" + "r" * 3100
    payload = build_payload(make_message(links={"report": long_url}))
    assert_within_slack_limits(payload)
    assert all(b["type"] != "actions" for b in payload["blocks"])
    assert "1 link(s) not shown" in [e["text"] for e in payload["blocks"][-1]["elements"]]


def test_a_message_without_summary_fields_links_or_model(make_message: MakeMessage) -> None:
    payload = build_payload(make_message(summary=" ", fields=[], links={}, model=None))
    assert_within_slack_limits(payload)
    assert [b["type"] for b in payload["blocks"]] == ["header", "context"]
    assert payload["text"] == "[CRITICAL] Drift on churn-classifier: 4 of 12 features"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http_client:
        yield http_client


def test_send_posts_the_payload(
    http_receiver: Receiver, client: httpx.Client, make_message: MakeMessage
) -> None:
    message = make_message()
    result = send_slack(http_receiver.url, message, http_client=client, allow_private=True)
    assert result.outcome is Outcome.DELIVERED
    assert result.response_excerpt == "ok"
    [request] = http_receiver.requests
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(request.body) == build_payload(message)
    assert "webhook-signature" not in request.headers


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (Reply(400, body=b"invalid_payload"), Outcome.DEAD),
        (Reply(403, body=b"action_prohibited"), Outcome.DEAD),
        (Reply(404, body=b"no_service"), Outcome.DEAD),
        (Reply(410, body=b"channel_is_archived"), Outcome.DISABLE_CHANNEL),
        (Reply(429, headers={"Retry-After": "1"}, body=b"rate_limited"), Outcome.RETRY),
        (Reply(500, body=b"rollup_error"), Outcome.RETRY),
    ],
)
def test_slack_answers(
    http_receiver: Receiver,
    client: httpx.Client,
    make_message: MakeMessage,
    reply: Reply,
    outcome: Outcome,
) -> None:
    http_receiver.answer(reply)
    result = send_slack(http_receiver.url, make_message(), http_client=client, allow_private=True)
    assert result.outcome is outcome
    assert result.response_excerpt == reply.body.decode()
