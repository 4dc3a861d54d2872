"""Response shapes of /v1/models/{name}/performance (API.md: Model performance)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EstimateOut(BaseModel):
    value: float
    ci_low: float | None = Field(description="95% interval (null only for ece).")
    ci_high: float | None
    n: int = Field(description="Labels used (realized, audited) or rows used (estimated).")


class RealizedOut(EstimateOut):
    coverage: float = Field(description="Share of the window's rows with ground truth.")


class MetricOut(BaseModel):
    realized: RealizedOut | None = Field(description="From ground truth (POST /feedback).")
    audited: EstimateOut | None = Field(
        description="From reviewers' labels weighted by their inclusion probabilities "
        "(stratified Horvitz–Thompson); accuracy, mae and rmse only."
    )
    estimated: EstimateOut | None = Field(
        description="Without labels: CBPE (classification) or DLE (regression)."
    )


class JudgedBy(BaseModel):
    metric: str
    source: str | None = Field(description="realized | audited | estimated; null: none yet.")
    value: float | None
    bound: float | None = Field(description="The floor (or, for errors, the ceiling).")


class PerformanceWindow(BaseModel):
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    rows: int
    model_version: str | None
    metrics: dict[str, MetricOut]
    reference: dict[str, float | None] = Field(
        description="The reference's own values (from its labels); null without them."
    )
    degraded: bool
    concept_shift_suspected: bool = Field(
        description="The label-based and label-free estimates disagree beyond their intervals."
    )
    incident_id: int | None
    first_block: int
    last_block: int
    judged_by: JudgedBy | None = Field(
        description="Which estimate judged `degraded`, and against which bound (null: the "
        "model has no performance settings)."
    )
    audited_labels: int = Field(description="Reviewers' labels behind the audited estimate.")
    drift_sample_labels: int = Field(
        default=0,
        description="Reviewers' labels on drift tickets' samples of this window's predictions: "
        "chosen for being doubtful in a drifted window, not a probability sample, so they are "
        "counted here and never mixed into the audited estimate.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "window_start": "2026-11-24T10:00:00Z",
                    "window_end": "2026-11-24T11:00:00Z",
                    "rows": 5000,
                    "model_version": None,
                    "metrics": {
                        "accuracy": {
                            "realized": {
                                "value": 0.91,
                                "ci_low": 0.89,
                                "ci_high": 0.93,
                                "n": 812,
                                "coverage": 0.16,
                            },
                            "audited": {"value": 0.88, "ci_low": 0.84, "ci_high": 0.92, "n": 140},
                            "estimated": {
                                "value": 0.93,
                                "ci_low": 0.92,
                                "ci_high": 0.94,
                                "n": 5000,
                            },
                        }
                    },
                    "reference": {"accuracy": 0.94, "f1": 0.91},
                    "degraded": False,
                    "concept_shift_suspected": False,
                    "incident_id": None,
                    "first_block": 10,
                    "last_block": 14,
                    "judged_by": {
                        "metric": "accuracy",
                        "source": "realized",
                        "value": 0.91,
                        "bound": 0.89,
                    },
                    "audited_labels": 140,
                    "drift_sample_labels": 20,
                }
            ]
        }
    )


class PerformanceIncidentOut(BaseModel):
    id: int
    status: str = Field(description="open | closed")
    severity: str
    metric: str
    source: str = Field(description="The estimate that judged the opening window.")
    value: float | None
    bound: float | None
    opened_at: dt.datetime
    closed_at: dt.datetime | None
    first_block: int
    last_block: int
    evaluations: int
    needs_labels: bool = Field(
        description="While open: labels are needed to decide whether the bound is crossed "
        "(the judged estimate has no labels, or its interval contains the bound); the "
        "model's audit rate is raised within its label budget until they decide it."
    )
    labels_note: str | None = Field(description="Why, as of the last judged window.")

    @model_validator(mode="after")
    def _only_while_open(self) -> PerformanceIncidentOut:
        if self.status != "open":
            self.needs_labels = False
        return self
