"""The transition table and its pure helpers: no clock, no database."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from exceptions_queue import states

T0 = dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)


def test_every_allowed_transition() -> None:
    assert states.TRANSITIONS == {
        (None, "open"): "open",
        ("open", "claim"): "claimed",
        ("claimed", "claim"): "claimed",
        ("claimed", "heartbeat"): "claimed",
        ("claimed", "release"): "open",
        ("claimed", "expire"): "open",
        ("claimed", "resolve"): "resolved",
        ("claimed", "dismiss"): "dismissed",
        ("resolved", "reopen"): "claimed",
        ("dismissed", "reopen"): "claimed",
        ("open", "cancel"): "dismissed",
    }


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (s, a)
        for s, a in itertools.product((None, *states.STATUSES), states.ACTIONS)
        if (s, a) not in states.TRANSITIONS
    ],
)
def test_everything_else_is_illegal(status: states.Status | None, action: states.Action) -> None:
    with pytest.raises(states.IllegalTransition, match=f"cannot {action}"):
        states.next_status(status, action)


def test_finished_tickets_only_reopen() -> None:
    for status in states.FINISHED:
        allowed = {a for (s, a) in states.TRANSITIONS if s == status}
        assert allowed == {"reopen"}


def test_only_a_claimed_ticket_is_worked() -> None:
    for action in ("heartbeat", "release", "expire", "resolve", "dismiss"):
        assert states.sources(action) == {"claimed"}  # type: ignore[arg-type]


def test_priorities_follow_the_kinds_importance() -> None:
    order = sorted(states.KINDS, key=states.priority_of, reverse=True)
    assert order.index("drift") < order.index("feedback_mismatch")
    assert order.index("feedback_mismatch") < order.index("data_quality")
    assert order.index("data_quality") < order.index("low_confidence")
    assert order[-1] == "audit"
    assert states.priority_of("no-such-kind") == 0


def test_sla_shortens_with_priority() -> None:
    spans = [states.sla(states.PRIORITY[k]) for k in sorted(states.KINDS, key=states.priority_of)]
    assert spans == sorted(spans, reverse=True)
    assert states.due_at("drift", T0) == T0 + dt.timedelta(hours=4)
    assert states.due_at("audit", T0) == T0 + dt.timedelta(days=7)


def test_escalation_every_n_abandonments() -> None:
    priority = 40
    seen = []
    for n in range(1, 3 * states.ESCALATE_AFTER + 1):
        priority = states.escalated_priority(priority, n)
        seen.append(priority)
    assert seen[states.ESCALATE_AFTER - 1] == 40 + states.ESCALATION_STEP
    assert seen[-1] == 40 + 3 * states.ESCALATION_STEP
    assert not states.is_escalated(states.ESCALATE_AFTER - 1)
    assert states.is_escalated(states.ESCALATE_AFTER)


@pytest.mark.parametrize(
    ("row", "actor", "token", "now", "reason"),
    [
        (states.Holding("resolved", None, None, None), "ana", None, T0, "finished"),
        (states.Holding("dismissed", None, None, None), "ana", "t", T0, "finished"),
        (states.Holding("open", None, None, None), "ana", None, T0, "not_claimed"),
        (states.Holding("claimed", "bob", "t", T0 + dt.timedelta(1)), "ana", "t", T0, "not_holder"),
        (states.Holding("claimed", "ana", "t", T0), "ana", "t", T0, "lease_expired"),
        (
            states.Holding("claimed", "ana", "t", T0 + dt.timedelta(1)),
            "ana",
            "x",
            T0,
            "stale_token",
        ),
    ],
)
def test_conflict_reasons(
    row: states.Holding, actor: str, token: str | None, now: dt.datetime, reason: str
) -> None:
    assert states.conflict_reason(row, actor_key=actor, lease_token=token, now=now) == reason
    assert "{id}" in states.CONFLICT_MESSAGES[reason]  # type: ignore[index]
