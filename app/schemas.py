"""Request and response shapes of the core resources (API.md: Models, Predictions, Keys)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from monitors.window import WindowSpec
from storage.options import ModelOptions

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
FEATURE_PATTERN = r"^[^\x00-\x1f]{1,100}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- keys
class KeyCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    scopes: Annotated[list[Literal["ingest", "review", "admin"]], Field(min_length=1)]

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "reviewer-ana", "scopes": ["review"]}]},
    )


class KeyOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


class KeyCreated(KeyOut):
    secret: str = Field(description="Shown once: store it now.")


# --------------------------------------------------------------------------- models
class FeatureSpec(Strict):
    name: Annotated[str, Field(pattern=FEATURE_PATTERN)]
    type: Literal["numerical", "categorical"]
    required: bool = Field(
        default=False, description="A record without it is a data-quality exception."
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.startswith("__"):
            raise ValueError("feature names starting with '__' are reserved for driftdesk")
        return value


class WindowIn(Strict):
    kind: Literal["count", "time"]
    size: int | str
    step: int | str

    @model_validator(mode="after")
    def _valid(self) -> WindowIn:
        WindowSpec.parse(self.model_dump())
        return self

    def spec(self) -> WindowSpec:
        return WindowSpec.parse(self.model_dump())


class DriftSettings(Strict):
    detectors: Literal["auto"] | dict[str, str] = "auto"
    alpha: Annotated[float, Field(gt=0, le=0.5)] = 0.01
    correction: Literal["bh", "bonferroni"] = "bh"
    min_effect: Literal["auto"] | Annotated[float, Field(ge=0)] | dict[str, float] = "auto"
    min_rows: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Windows smaller than this are 'insufficient data'."
    )


HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "roc_auc")
LOWER_IS_BETTER = ("mae", "rmse")
PerformanceMetric = Literal["accuracy", "precision", "recall", "f1", "roc_auc", "mae", "rmse"]


class SettingMismatch(ValueError):
    """A setting that does not fit the model (``field`` names it within its object)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class PerformanceSettings(Strict):
    """Which metric says the model is still right, and when it is not (API.md: Model performance).

    A window is degraded when its best available estimate's whole 95% interval is
    worse than a bound: below ``min`` or below the reference's value minus
    ``max_drop`` (accuracy-like metrics); above ``max`` or above the reference's
    value plus ``max_drop`` (errors: ``mae``, ``rmse``).
    """

    metric: PerformanceMetric | None = Field(
        default=None,
        description="accuracy, precision, recall, f1, roc_auc (binary) for classification; "
        "mae, rmse for regression. Default: accuracy, or mae.",
    )
    min: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None, description="Floor of an accuracy-like metric (0 to 1)."
    )
    max: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Ceiling of an error metric (mae, rmse)."
    )
    max_drop: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Allowed worsening from the reference's value: a drop (at most 1) for "
        "accuracy-like metrics, a rise for errors.",
    )

    min_coverage: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.05,
        description="Judge a window by its realized value (ground truth) when at least this "
        "share of its rows has ground truth (and at least `min_labels` labels).",
    )
    min_labels: Annotated[int, Field(ge=1)] = Field(
        default=30,
        description="Labels a realized or audited value needs to judge a window; with fewer, "
        "the next estimate judges (audited, then the label-free one).",
    )
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"metric": "accuracy", "min": 0.85, "max_drop": 0.05}]},
    )

    def for_task(self, task: str, labels: list[str] | None) -> PerformanceSettings:
        """These settings checked against a model's task, with the metric filled in.

        Raises :class:`SettingMismatch` naming the field when they do not fit the task.
        """
        metric = self.metric or ("accuracy" if task == "classification" else "mae")
        if task == "classification" and metric in LOWER_IS_BETTER:
            raise SettingMismatch(
                "metric",
                f"{metric!r} is a regression metric; a classification model takes "
                f"one of {list(HIGHER_IS_BETTER)}",
            )
        if task == "regression" and metric in HIGHER_IS_BETTER:
            raise SettingMismatch(
                "metric",
                f"{metric!r} is a classification metric; a regression model takes "
                f"one of {list(LOWER_IS_BETTER)}",
            )
        if metric == "roc_auc" and len(labels or ()) != 2:
            raise SettingMismatch(
                "metric", "roc_auc is defined for binary models (two labels) only"
            )
        if metric in LOWER_IS_BETTER and self.min is not None:
            raise SettingMismatch(
                "min", f"{metric} is an error (lower is better): give max instead"
            )
        if metric in HIGHER_IS_BETTER and self.max is not None:
            raise SettingMismatch("max", f"{metric} is better when higher: give min instead")
        if metric in HIGHER_IS_BETTER and self.max_drop is not None and self.max_drop > 1:
            raise SettingMismatch(
                "max_drop", f"{metric} lies between 0 and 1, so a drop is at most 1"
            )
        return self.model_copy(update={"metric": metric})


class ModelCreate(Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    task: Literal["classification", "regression"]
    features: Annotated[list[FeatureSpec], Field(min_length=1, max_length=2000)]
    labels: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = None
    window: WindowIn = Field(default_factory=lambda: WindowIn(kind="count", size=5000, step=1000))
    confidence_threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    drift: DriftSettings = Field(default_factory=DriftSettings)
    strict: bool = True
    options: ModelOptions = Field(default_factory=ModelOptions)
    performance: PerformanceSettings | None = Field(
        default=None,
        description="The metric to watch and its bounds; null: performance is reported, "
        "never judged degraded.",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "churn-classifier",
                    "task": "classification",
                    "features": [
                        {"name": "age", "type": "numerical"},
                        {"name": "plan", "type": "categorical"},
                    ],
                    "labels": ["stay", "churn"],
                    "window": {"kind": "count", "size": 5000, "step": 1000},
                    "confidence_threshold": 0.6,
                    "drift": {"detectors": "auto", "alpha": 0.01, "min_effect": "auto"},
                    "strict": True,
                }
            ]
        },
    )

    @field_validator("features")
    @classmethod
    def _unique_features(cls, value: list[FeatureSpec]) -> list[FeatureSpec]:
        seen: set[str] = set()
        for f in value:
            if f.name in seen:
                raise ValueError(f"feature {f.name!r} is listed twice")
            seen.add(f.name)
        return value

    @model_validator(mode="after")
    def _labels_match_task(self) -> ModelCreate:
        if self.task == "classification":
            if not self.labels or len(self.labels) < 2:
                raise ValueError("a classification model needs at least two labels")
            if len(set(self.labels)) != len(self.labels):
                raise ValueError("labels must be unique")
        elif self.labels:
            raise ValueError("a regression model has no labels")
        return self


class ModelPatch(Strict):
    window: WindowIn | None = None
    confidence_threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    drift: DriftSettings | None = None
    strict: bool | None = None
    options: ModelOptions | None = None
    performance: PerformanceSettings | None = None
    status: Literal["active", "archived"] | None = None


class ReferenceBrief(BaseModel):
    id: int
    rows: int
    source: str
    created_at: dt.datetime


class ModelOut(BaseModel):
    name: str
    task: str
    features: list[FeatureSpec]
    labels: list[str] | None
    window: dict[str, Any]
    confidence_threshold: float | None
    drift: DriftSettings
    strict: bool
    options: ModelOptions
    performance: PerformanceSettings | None
    status: str
    records: int
    reference: ReferenceBrief | None
    created_at: dt.datetime
    updated_at: dt.datetime
    archived_at: dt.datetime | None


# --------------------------------------------------------------------------- predictions
Output = StrictStr | StrictInt | StrictFloat


def _feature_object(value: Any) -> dict[str, Any]:
    # Only the shape here: each value is checked against the model's schema, one
    # column per feature (app.ingest.columns), which is far cheaper than a union per value.
    if type(value) is not dict:
        raise ValueError("features must be an object of feature values")
    return value


Features = Annotated[
    dict[str, Any],
    PlainValidator(_feature_object),
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {"type": ["number", "string", "boolean", "null"]},
            "description": "Feature values by name: numbers, strings (categories) or null.",
        }
    ),
]


class PredictionIn(Strict):
    id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    timestamp: AwareDatetime | None = None
    features: Features
    prediction: Output
    confidence: Annotated[float, Field(ge=0, le=1)] | None = None
    probabilities: dict[str, Annotated[float, Field(ge=0, le=1)]] | None = None
    model_version: Annotated[str, Field(max_length=100)] | None = None


class PredictionBatch(Strict):
    predictions: list[PredictionIn]


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    exceptions: int


class PredictionOut(BaseModel):
    id: str
    timestamp: dt.datetime
    received_at: dt.datetime
    features: dict[str, Any]
    prediction: Any
    confidence: float | None
    probabilities: dict[str, float] | None
    model_version: str | None
    label: Any = Field(default=None, description="Ground truth from feedback, if any.")


class FeedbackIn(Strict):
    id: Annotated[str, Field(min_length=1, max_length=200)]
    label: Output


class FeedbackBatch(Strict):
    feedback: Annotated[list[FeedbackIn], Field(min_length=1)]


class FeedbackResult(BaseModel):
    accepted: int
    unknown_ids: list[str]
    exceptions: int


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None
