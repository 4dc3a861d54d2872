"""How a batch's share of the label budget is set: what is left over what is still to come."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from app.db import Database
from exceptions_queue import repository
from exceptions_queue.sampling import Budget, batch_share, expected_later, spent
from tests.exceptions_queue.helpers import model_id, seed

UTC = dt.UTC
NOON = dt.datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _volume(db: Database, mid: int, hour: dt.datetime, considered: int, expected: float) -> None:
    with db.session() as s:
        repository.add_volume(
            s,
            model_id=mid,
            hour=hour,
            opened={"low_confidence": considered // 2},
            suppressed={"low_confidence": considered - considered // 2},
            expected={"low_confidence": expected},
        )


def test_without_history_the_rate_so_far_is_carried_to_the_end_of_the_hour(
    client: TestClient, db: Database
) -> None:
    seed(client, 0)
    mid = model_id(db)
    budget = Budget(40)
    at = NOON + dt.timedelta(minutes=15)
    with db.session(readonly=True) as s:
        # 10 now, a quarter into the hour: 40/h, so 30 more expected
        assert expected_later(s, model_id=mid, budget=budget, now=at, arriving=10) == (
            pytest.approx(30.0)
        )
        pace = batch_share(s, model_id=mid, budget=budget, now=at, candidates=10)
    assert (pace.spent, pace.remaining, pace.share) == (0.0, 40.0, pytest.approx(10.0))
    _volume(db, mid, NOON, 10, 10.0)
    with db.session(readonly=True) as s:
        later = batch_share(s, model_id=mid, budget=budget, now=at, candidates=10)
    # 10 spent; 20 in half an hour... 20 candidates so far, 20 more expected after these 10
    assert later.spent == pytest.approx(10.0) and later.remaining == pytest.approx(30.0)
    assert later.expected_later == pytest.approx(60.0)
    assert later.share == pytest.approx(30.0 * 10 / 70)


def test_the_hour_of_day_profile_forecasts_once_a_day_of_history_exists(
    client: TestClient, db: Database
) -> None:
    seed(client, 0)
    mid = model_id(db)
    for days in (1, 2):
        _volume(db, mid, NOON - dt.timedelta(days=days), 120, 20.0)  # noon: busy
        _volume(db, mid, NOON - dt.timedelta(days=days, hours=1), 12, 12.0)
    budget = Budget(40)
    at = NOON + dt.timedelta(minutes=30)
    with db.session(readonly=True) as s:
        # the profile says 120 at noon: 60 in the half hour left (more than the rate so far)
        assert expected_later(s, model_id=mid, budget=budget, now=at, arriving=5) == (
            pytest.approx(60.0)
        )
        assert spent(s, model_id=mid, budget=budget, now=at) == 0.0
    # a daily budget sums the profile over what is left of the day (after noon: nothing)
    _volume(db, mid, NOON - dt.timedelta(hours=1), 3, 3.0)  # today 11:00
    with db.session(readonly=True) as s:
        daily = expected_later(s, model_id=mid, budget=Budget(40, "day"), now=at, arriving=5)
        assert daily == pytest.approx(60.0)  # not 0.4/h for 11.5 h, the rate so far
        assert spent(s, model_id=mid, budget=Budget(40, "day"), now=at) == pytest.approx(3.0)
        assert spent(s, model_id=mid, budget=Budget(40), now=at) == 0.0


def test_a_surge_beyond_the_forecast_is_paced_by_the_rate_observed(
    client: TestClient, db: Database
) -> None:
    seed(client, 0)
    mid = model_id(db)
    _volume(db, mid, NOON - dt.timedelta(hours=1), 10, 10.0)  # last hour: 10 candidates
    at = NOON + dt.timedelta(minutes=6)
    with db.session(readonly=True) as s:
        # 30 in six minutes: 300/h, not the 10/h of the last hour
        later = expected_later(s, model_id=mid, budget=Budget(40), now=at, arriving=30)
    assert later == pytest.approx(300 * 0.9)


def test_the_budget_is_one_or_the_other() -> None:
    from pydantic import ValidationError

    from storage.options import ModelOptions

    with pytest.raises(ValidationError, match="not both"):
        ModelOptions(ticket_budget_per_hour=1, ticket_budget_per_day=10)
    assert Budget.of(ModelOptions(ticket_budget_per_day=10)) == Budget(10, "day")
    assert Budget.of(ModelOptions()) is None
