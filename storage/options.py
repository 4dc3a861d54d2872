"""The options of a monitored ML model: the typed content of ``models.options``.

Knobs API.md leaves open (incident debounce, ticket rules, label QC), each with
a default. The API validates them (app/schemas.py uses this model); the drift
engine and the queue read them with these defaults.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ModelOptions(BaseModel):
    """Knobs API.md leaves open, each with a default that suits most models."""

    model_config = ConfigDict(extra="forbid")

    incident_open_after: Annotated[int, Field(ge=1)] = Field(
        default=2,
        description="Open an incident when this many of the last `incident_of_last` evaluations drifted.",
    )
    incident_of_last: Annotated[int, Field(ge=1)] = 3
    incident_close_after: Annotated[int, Field(ge=1)] = Field(
        default=3, description="Close it after this many consecutive clean evaluations."
    )
    margin_threshold: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None,
        description="Also ticket predictions whose top-1 minus top-2 probability is below this.",
    )
    entropy_threshold: Annotated[float, Field(ge=0)] | None = Field(
        default=None,
        description="Also ticket predictions whose probability entropy (nats) is above this.",
    )
    audit_rate: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0, description="Fraction of confident predictions sampled for human audit."
    )
    ticket_budget_per_hour: Annotated[int, Field(ge=0)] | None = Field(
        default=None,
        description=(
            "Label budget: this many flagged records per hour become tickets in expectation, "
            "drawn with probability proportional to their value; the rest are counted as "
            "suppressed. Audits keep their own rate, outside the budget."
        ),
    )
    ticket_budget_per_day: Annotated[int, Field(ge=0)] | None = Field(
        default=None,
        description="The label budget per UTC day instead of per hour (not both).",
    )
    drift_sample_size: Annotated[int, Field(ge=1, le=500)] = 20
    out_of_range_tolerance: Annotated[float, Field(ge=0)] = Field(
        default=0.5,
        description="A numerical value further than this many reference ranges outside [min, max] is a data-quality break.",
    )
    retraining_ready_labels: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Raise 'retraining data ready' after this many new labels."
    )
    review_rate: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0,
        description="Fraction of resolved tickets given an independent second review (label QC).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelOptions:
        if self.incident_open_after > self.incident_of_last:
            raise ValueError("incident_open_after cannot exceed incident_of_last")
        if self.ticket_budget_per_hour is not None and self.ticket_budget_per_day is not None:
            raise ValueError("set ticket_budget_per_hour or ticket_budget_per_day, not both")
        return self
