"""The shape of GET /v1/workforce (API.md: Workforce)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class Arrivals(BaseModel):
    model: str
    kind: str
    per_hour: float = Field(description="The rate the forecast uses for the current hour.")
    recent_per_hour: float = Field(description="Tickets created over the recent span, per hour.")
    basis: Literal["recent", "hour_of_week"] = Field(
        description="`recent` until the model has a week of history; then the hour-of-week "
        "profile, scaled by how the recent rate compares with the profile's current hour."
    )
    next_24h: list[float] = Field(description="Expected arrivals per hour for the coming hours.")


class HandleTime(BaseModel):
    kind: str
    finished: int = Field(description="Tickets finished in the last 24 h with a claim time.")
    median_seconds: float | None
    p90_seconds: float | None
    mean_seconds: float | None


class Reviewer(BaseModel):
    name: str
    active: bool = Field(description="Claimed or finished a ticket within the active span.")
    finished_last_hour: int
    finished_24h: int
    median_handle_seconds: float | None
    p90_handle_seconds: float | None
    second_reviews: int = Field(description="Their labels checked by a second review (24 h).")
    agreement: float | None = Field(description="Share of those second reviews that agreed.")


class Throughput(BaseModel):
    model: str
    kind: str
    finished_last_hour: int


class FirstClaim(BaseModel):
    model: str
    kind: str
    claimed: int = Field(description="Tickets created in the last 24 h and claimed since.")
    median_seconds: float | None
    p90_seconds: float | None


class BacklogPoint(BaseModel):
    hours: float
    at: dt.datetime
    expected: float = Field(description="Mean waiting tickets over the simulated paths.")
    low: float
    high: float


class Breach(BaseModel):
    model: str
    kind: str
    priority: int
    sla_hours: float
    waiting: int
    breach_at: dt.datetime | None = Field(
        description="When its first ticket passes its SLA at current staffing (null: not "
        "within 24 h)."
    )
    in_minutes: float | None
    ticket_created_at: dt.datetime | None = Field(
        description="When that ticket was (or will be) created."
    )


class PriorityBreach(BaseModel):
    priority: int
    sla_hours: float
    breach_at: dt.datetime | None
    in_minutes: float | None


class PlanHour(BaseModel):
    hour: dt.datetime
    arrivals_per_hour: float
    reviewers_needed: int
    capacity_per_hour_now: float = Field(description="What the current reviewers finish.")


class Forecast(BaseModel):
    method: str
    reviewers: int = Field(description="Active reviewers: the staffing the forecast assumes.")
    busy: int
    service_rate_per_hour: float = Field(description="Tickets one reviewer finishes per hour.")
    capacity_per_hour: float
    backlog: list[BacklogPoint] = Field(description="Waiting tickets at +1 h, +4 h and +24 h.")
    path: list[BacklogPoint] = Field(
        description="Waiting tickets each hour from now: the fluid model's path, with the "
        "Monte Carlo's 10th-90th percentile band."
    )
    breaches: list[Breach]
    breaches_by_priority: list[PriorityBreach]
    reviewers_needed_now: int
    holds_sla: bool = Field(description="Whether current staffing avoids every breach in 24 h.")
    plan: list[PlanHour]


class LabelBudget(BaseModel):
    """How a model's label budget is being spent in the current period (docs/statistics.md)."""

    model: str
    period: Literal["hour", "day"]
    labels: int = Field(description="The budget: flagged records per period, in expectation.")
    period_start: dt.datetime
    spent: float = Field(
        description="Spent so far in expectation: the sum of the considered records' "
        "inclusion probabilities (and of the raised audit's extra audits)."
    )
    considered: int = Field(description="Flagged records the budget considered this period.")
    drawn: int = Field(description="Of those, drawn: tickets opened.")
    expected_later: float = Field(
        description="Flagged records expected in the rest of the period (the pacing's forecast)."
    )
    audit_raised: bool = Field(
        description="An open incident needs labels to be decided: the audit rate is raised."
    )


class Workforce(BaseModel):
    at: dt.datetime
    model: str | None
    kind: str | None
    waiting: int
    held: int
    arrivals_per_hour: float
    arrivals: list[Arrivals]
    handle_times: list[HandleTime]
    active_reviewers: int
    reviewers: list[Reviewer]
    throughput_per_hour: int
    throughput: list[Throughput]
    time_to_first_claim: list[FirstClaim]
    label_budgets: list[LabelBudget] = Field(
        description="Per model with a label budget: what it has spent this period."
    )
    forecast: Forecast | None
    forecast_unavailable: str | None = Field(
        description="Why there is no forecast (e.g. no finished ticket yet to measure handle time)."
    )
