"""Slack incoming-webhook messages: Block Kit with a plain ``text`` fallback.

Layout: a header (severity or RESOLVED, and the title), the summary, the
fields two to a row, link buttons (ticket, dashboard, drift report), and a
context line (model, rule, when, reminder number).

Slack's documented limits, all respected by truncating (with ``…``) or by
dropping what does not fit and saying so in the context line:

- top-level ``text``: truncated by Slack past 40,000 characters; ours is one
  short line (:data:`FALLBACK_MAX`), since it is what notifications show;
- at most 50 blocks per message;
- header text (plain_text) at most 150 characters;
- section text at most 3,000 characters; at most 10 fields per section, each
  at most 2,000 characters;
- context at most 10 elements; actions at most 25 elements;
- button text at most 75 characters, button URL at most 3,000.

Slack also rejects messages whose blocks are long in total
(``msg_blocks_too_long``) well below 50 × 3,000 characters, at a length it
does not document (reports put it near 13,000), so all block text together is
kept under :data:`BLOCKS_TEXT_BUDGET`. Lengths are counted in UTF-16 code
units, which is never less than the count in characters, so a message full of
emoji stays inside the limits however Slack counts.
"""

from __future__ import annotations

import json
from typing import Any, Final

import httpx

from app.alerting.message import AlertMessage
from app.alerting.outcome import DeliveryOutcome
from app.alerting.transport import DEFAULT_TIMEOUT_SECONDS, post

TEXT_MAX: Final = 40_000
FALLBACK_MAX: Final = 300
MAX_BLOCKS: Final = 50
HEADER_MAX: Final = 150
SECTION_TEXT_MAX: Final = 3000
FIELDS_PER_SECTION: Final = 10
FIELD_TEXT_MAX: Final = 2000
CONTEXT_ELEMENTS_MAX: Final = 10
ACTIONS_MAX: Final = 25
BUTTON_TEXT_MAX: Final = 75
BUTTON_URL_MAX: Final = 3000
BLOCKS_TEXT_BUDGET: Final = 12_000
# A field is a compact two-column cell; a value longer than this belongs in the
# ticket. Name (100) + value (500) + markup stays far below FIELD_TEXT_MAX.
FIELD_NAME_SHOWN_MAX: Final = 100
FIELD_SHOWN_MAX: Final = 500

_ELLIPSIS = "…"
_ESCAPES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SEVERITY_MARK: Final = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
_RESOLVED_MARK: Final = "✅"
_LINK_LABELS: Final = {
    "ticket": "Open ticket",
    "tickets": "Open queue",
    "dashboard": "Dashboard",
    "report": "Drift report",
    "evidently_report": "Drift report",
}


def slack_length(text: str) -> int:
    """Length in UTF-16 code units (an emoji counts 2).

    >>> slack_length("abc"), slack_length("🔴")
    (3, 2)
    """
    return len(text.encode("utf-16-le")) // 2


def _units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _fit(text: str, limit: int, *, escape: bool) -> str:
    """``text`` cut to ``limit`` UTF-16 units with a trailing ``…`` if cut.

    With ``escape``, Slack's three control characters become entities first,
    and an entity is never cut in half.
    """
    pieces: list[str] = []
    used = 0
    for char in text:
        piece = _ESCAPES.get(char, char) if escape else char
        size = sum(_units(c) for c in piece)
        if used + size > limit:
            # Make room for the ellipsis by dropping whole pieces.
            while pieces and used + 1 > limit:
                used -= sum(_units(c) for c in pieces.pop())
            return "".join(pieces) + _ELLIPSIS
        pieces.append(piece)
        used += size
    return "".join(pieces)


def plain(text: str, limit: int) -> str:
    """Plain text cut to ``limit``.

    >>> plain("x" * 200, 150)[-3:], slack_length(plain("x" * 200, 150))
    ('xx…', 150)
    """
    return _fit(text, limit, escape=False)


def mrkdwn(text: str, limit: int) -> str:
    """Text for a ``mrkdwn`` object: ``&``, ``<``, ``>`` escaped, cut to ``limit``.

    >>> mrkdwn("p < 0.01 & effect > 0.1", 3000)
    'p &lt; 0.01 &amp; effect &gt; 0.1'
    """
    return _fit(text, limit, escape=True)


def _label(message: AlertMessage) -> str:
    return "RESOLVED" if message.resolved else message.severity.upper()


def fallback_text(message: AlertMessage) -> str:
    """The one line notifications and screen readers show.

    >>> from datetime import UTC, datetime
    >>> m = AlertMessage(alert_id="1", dedup_key="k", rule="queue.sla", model="churn",
    ...     severity="warning", status="resolved", title="Queue back within SLA",
    ...     summary="", occurred_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> fallback_text(m)
    '[RESOLVED] Queue back within SLA (churn)'
    """
    model = f" ({message.model})" if message.model else ""
    return mrkdwn(f"[{_label(message)}] {message.title}{model}", FALLBACK_MAX)


def _button_label(name: str) -> str:
    return _LINK_LABELS.get(name, name.replace("_", " ").capitalize())


def _context_line(message: AlertMessage, omitted_fields: int, omitted_links: int) -> list[str]:
    parts: list[str] = []
    if message.model:
        parts.append(f"*Model:* {mrkdwn(message.model, 200)}")
    parts.append(f"*Rule:* {mrkdwn(message.rule, 100)}")
    epoch = int(message.occurred_at.timestamp())
    iso = message.occurred_at.isoformat(timespec="seconds")
    verb = "Resolved" if message.resolved else "Since"
    parts.append(f"{verb} <!date^{epoch}^{{date_short_pretty}} {{time}}|{iso}>")
    if message.repeat:
        parts.append(f"Reminder {message.repeat}")
    if omitted_fields:
        parts.append(f"{omitted_fields} more field(s) in the ticket")
    if omitted_links:
        parts.append(f"{omitted_links} link(s) not shown")
    return parts[:CONTEXT_ELEMENTS_MAX]


def _buttons(message: AlertMessage) -> tuple[list[dict[str, Any]], int]:
    """The link buttons that fit (URL length, buttons per block), and how many links did not."""
    buttons: list[dict[str, Any]] = []
    omitted = 0
    for name, url in message.links.items():
        if slack_length(url) > BUTTON_URL_MAX or len(buttons) == ACTIONS_MAX:
            omitted += 1
            continue
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": plain(_button_label(name), BUTTON_TEXT_MAX)},
                "url": url,
                "action_id": f"link-{len(buttons)}",
            }
        )
    return buttons, omitted


def _field_cells(message: AlertMessage, *, used: int, blocks_after: int) -> list[str]:
    """The fields that fit, in order, in what the text budget and the block count leave.

    ``used``: text units the other blocks take; ``blocks_after``: blocks there
    are besides the fields' sections.
    """
    cells: list[str] = []
    for name, value in message.fields:
        cell = f"*{mrkdwn(name, FIELD_NAME_SHOWN_MAX)}*\n{mrkdwn(value, FIELD_SHOWN_MAX)}"
        sections_needed = -(-(len(cells) + 1) // FIELDS_PER_SECTION)
        if (
            used + slack_length(cell) > BLOCKS_TEXT_BUDGET
            or blocks_after + sections_needed > MAX_BLOCKS
        ):
            break
        cells.append(cell)
        used += slack_length(cell)
    return cells


def build_payload(message: AlertMessage) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook."""
    mark = _RESOLVED_MARK if message.resolved else _SEVERITY_MARK[message.severity]
    header_text = plain(f"{mark} {_label(message)}: {message.title}", HEADER_MAX)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header_text, "emoji": True}}
    ]
    used = slack_length(header_text)
    if message.summary.strip():
        summary = mrkdwn(message.summary, SECTION_TEXT_MAX)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": summary}})
        used += slack_length(summary)
    buttons, omitted_links = _buttons(message)
    used += sum(slack_length(b["url"]) + BUTTON_TEXT_MAX for b in buttons)
    used += 600  # The context line is at most a few hundred units; keep room for it.
    reserved_blocks = (1 if buttons else 0) + 1  # actions, context
    cells = _field_cells(message, used=used, blocks_after=len(blocks) + reserved_blocks)
    omitted_fields = len(message.fields) - len(cells)
    for start in range(0, len(cells), FIELDS_PER_SECTION):
        chunk = cells[start : start + FIELDS_PER_SECTION]
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": c} for c in chunk]})
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    context = _context_line(message, omitted_fields, omitted_links)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": p} for p in context]})
    return {
        "text": fallback_text(message),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def send_slack(
    url: str,
    message: AlertMessage,
    *,
    http_client: httpx.Client,
    allow_private: bool,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> DeliveryOutcome:
    """POST the message to a Slack incoming webhook.

    Slack answers ``200 ok``, ``400 invalid_payload`` (dead), ``404``/``403``
    for a removed hook or channel (dead), ``410 channel_is_archived`` (the
    channel is disabled), ``429`` with ``Retry-After`` and ``5xx`` (retried).
    """
    body = json.dumps(build_payload(message), ensure_ascii=False, separators=(",", ":"))
    return post(
        url,
        body=body.encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8"},
        http_client=http_client,
        allow_private=allow_private,
        timeout=timeout,
    )
