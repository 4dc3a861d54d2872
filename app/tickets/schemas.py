"""Request and response shapes of the queue's API (API.md: Tickets, Retraining data)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas import Output, PredictionOut
from exceptions_queue.states import Kind, Status

LeaseSeconds = Annotated[int, Field(ge=5, le=86_400)]
LeaseToken = Annotated[
    str | None,
    Field(
        max_length=64,
        description=(
            "The token the claim returned. Optional: without it the caller must be the "
            "current holder (same API key) with an unexpired lease."
        ),
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClaimIn(Strict):
    model: str | None = Field(default=None, description="Only tickets of this model.")
    kind: Kind | None = Field(default=None, description="Only tickets of this kind.")
    lease_seconds: LeaseSeconds | None = Field(
        default=None, description="Lease length (default DRIFTDESK_DEFAULT_LEASE_SECONDS)."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "churn-classifier", "lease_seconds": 600}]},
    )


class HeartbeatIn(Strict):
    lease_token: LeaseToken = None
    lease_seconds: LeaseSeconds | None = None


class ReleaseIn(Strict):
    lease_token: LeaseToken = None


class DismissIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    lease_token: LeaseToken = None

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "test traffic"}]}
    )


class LabelItem(Strict):
    prediction_id: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="The prediction's id (the client id it was posted with)."
    )
    label: Output


class ResolveIn(Strict):
    """`{"label", "note"}`; a drift or data-quality ticket takes `labels` for its predictions."""

    label: Output | None = Field(
        default=None, description="The true label (a number for regression)."
    )
    labels: Annotated[list[LabelItem], Field(max_length=1000)] | None = Field(
        default=None,
        description="Drift and data-quality tickets: labels for any of their sampled predictions.",
    )
    note: Annotated[str, Field(max_length=5000)] | None = None
    lease_token: LeaseToken = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"label": "churn", "note": "customer asked to cancel"},
                {
                    "labels": [
                        {"prediction_id": "req-8f3a", "label": "stay"},
                        {"prediction_id": "req-9b01", "label": "churn"},
                    ],
                    "note": "new plan confuses the model",
                },
            ]
        },
    )

    @model_validator(mode="after")
    def _one_way(self) -> ResolveIn:
        if self.label is not None and self.labels is not None:
            raise ValueError("send either label or labels, not both")
        return self


class ReopenIn(Strict):
    lease_seconds: LeaseSeconds | None = None


class EventOut(BaseModel):
    id: int
    action: str
    actor: str
    from_status: str | None
    to_status: str
    at: dt.datetime
    payload: dict[str, Any]


class LabelOut(BaseModel):
    id: int
    prediction_id: str | None = Field(description="The prediction's client id.")
    label: Any
    note: str | None
    source: str = Field(description="review | second_review | adjudication")
    status: str = Field(
        description="current (exported) | disputed | superseded | retracted (undone)"
    )
    labelled_by: str
    labelled_at: dt.datetime
    superseded_by: int | None


class TicketOut(BaseModel):
    id: int
    model: str
    kind: str
    status: Status
    priority: int
    escalated: bool = Field(description="Abandoned often enough to have moved up the queue.")
    abandon_count: int
    reason: str
    details: dict[str, Any]
    count: int = Field(description="Records the ticket stands for (data-quality groups).")
    inclusion_probability: float | None = Field(
        default=None,
        description="The probability its record was chosen for review (flagged: 1, or less "
        "when the hourly budget suppressed some; audit: the audit rate); null: not a "
        "probability sample (drift samples, feedback mismatch, data quality).",
    )
    sampling_stratum: str | None = Field(
        default=None,
        description="flagged | unflagged (probability strata), drift_sample, feedback_mismatch.",
    )
    prediction_id: str | None = Field(
        default=None, description="The client id of the prediction a ticket is about."
    )
    created_at: dt.datetime
    updated_at: dt.datetime
    age_seconds: float
    due_at: dt.datetime = Field(description="SLA due time (by priority).")
    overdue: bool
    claimed_by: str | None
    claimed_at: dt.datetime | None
    lease_expires_at: dt.datetime | None
    last_abandoned_by: str | None
    resolved_by: str | None
    resolved_at: dt.datetime | None
    resolution: dict[str, Any] | None
    subject_ticket_id: int | None = Field(
        default=None, description="Second review / adjudication: the ticket being checked."
    )
    qc_agreed: bool | None = Field(
        default=None, description="Second review: whether it agreed with the first label."
    )


class TicketDetail(TicketOut):
    predictions: list[PredictionOut] = Field(
        description="The ticket's prediction, or the predictions it may label."
    )
    labels: list[LabelOut]
    events: list[EventOut]


class ClaimedTicket(TicketOut):
    lease_token: str = Field(description="Send it with resolve, dismiss, release and heartbeat.")
    predictions: list[PredictionOut]


class KindCount(BaseModel):
    model: str
    kind: str
    open: int
    claimed: int
    overdue: int
    oldest_open_age_seconds: float | None


class ReviewerThroughput(BaseModel):
    reviewer: str
    resolved: int
    dismissed: int


class Suppressed(BaseModel):
    model: str
    kind: str
    hour: dt.datetime
    count: int


class Agreement(BaseModel):
    name: str
    reviews: int
    agreed: int
    rate: float | None


class QueueSummary(BaseModel):
    open: int
    claimed: int
    overdue: int
    oldest_open_age_seconds: float | None
    queues: list[KindCount]
    finished_last_hour: list[ReviewerThroughput]
    suppressed_total: int
    suppressed: list[Suppressed] = Field(description="Per model, kind and hour, newest first.")
    agreement_by_model: list[Agreement]
    agreement_by_reviewer: list[Agreement]
