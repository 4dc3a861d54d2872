"""Request and response shapes of the alerting API (API.md: Alert channels).

No response shape has a field for a secret: signing secrets and SMTP
passwords cannot leave the service through these models, and channel targets
are shown redacted (a Slack hook's path is its token).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.alerting.channels import ChannelKind
from app.alerting.message import Severity

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
MAX_SECRETS = 3

ModelName = Annotated[str, Field(pattern=NAME_PATTERN)]
Secret = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelCreate(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    kind: ChannelKind
    target: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2000,
            description="Slack incoming-webhook URL, webhook URL, or email address(es), "
            "comma-separated.",
        ),
    ]
    models: Annotated[list[ModelName], Field(max_length=1000)] | None = Field(
        default=None, description="Only alerts about these models (null: every model)."
    )
    min_severity: Severity = "info"
    secret: Secret | None = Field(
        default=None,
        description="Webhook signing secret (`whsec_` + base64 of 24-64 bytes), "
        "per the Standard Webhooks spec. Never shown again.",
    )
    secrets: Annotated[list[Secret], Field(min_length=1, max_length=MAX_SECRETS)] | None = Field(
        default=None,
        description="Several signing secrets during a rotation (each signs every message).",
    )
    min_interval_seconds: Annotated[float, Field(ge=0, le=3600)] | None = Field(
        default=None,
        description="Rate limit: at most one message per this many seconds "
        "(default: the Slack setting for Slack channels, none otherwise).",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "ml-oncall",
                    "kind": "webhook",
                    "target": "https://hooks.example.com/driftdesk",
                    "models": ["churn-classifier"],
                    "min_severity": "warning",
                    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                },
                {
                    "name": "ml-slack",
                    "kind": "slack",
                    "target": "https://hooks.slack.com/services/T000/B000/XXXX",
                    "min_severity": "warning",
                },
            ]
        },
    )

    @model_validator(mode="after")
    def _one_secret_field(self) -> ChannelCreate:
        if self.secret is not None and self.secrets is not None:
            raise ValueError("give either secret or secrets, not both")
        return self

    def secret_list(self) -> list[str] | None:
        return [self.secret] if self.secret is not None else self.secrets


class ChannelUpdate(_Strict):
    """Fields to change; absent fields stay as they are."""

    target: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    models: Annotated[list[ModelName], Field(max_length=1000)] | None = None
    min_severity: Severity | None = None
    secret: Secret | None = None
    secrets: Annotated[list[Secret], Field(min_length=1, max_length=MAX_SECRETS)] | None = Field(
        default=None,
        description="Rotate: send the new secret first and the old one after it; once "
        "receivers use the new one, send the new one alone.",
    )
    min_interval_seconds: Annotated[float, Field(ge=0, le=3600)] | None = None
    enabled: bool | None = Field(
        default=None,
        description="false disables the channel (its unsent deliveries go dead, to be "
        "replayed later); true enables it again, e.g. after a 410 disabled it.",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"enabled": True},
                {
                    "secrets": [
                        "whsec_bmV3IHNlY3JldCAyNCBieXRlcyBsb25n",
                        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    ]
                },
            ]
        },
    )

    @model_validator(mode="after")
    def _one_secret_field(self) -> ChannelUpdate:
        if self.secret is not None and self.secrets is not None:
            raise ValueError("give either secret or secrets, not both")
        return self


class ChannelOut(BaseModel):
    name: str
    kind: str
    target: str = Field(description="Redacted: scheme and host of a URL; email addresses as is.")
    models: list[str] | None
    min_severity: str
    signing_secrets: int = Field(description="How many signing secrets the channel holds.")
    min_interval_seconds: float
    enabled: bool
    disabled_at: dt.datetime | None
    disabled_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class TestResult(BaseModel):
    channel: str
    delivered: bool
    outcome: Literal["delivered", "retry", "dead", "disable_channel"] = Field(
        description="What the dispatcher would do with this answer (a test changes nothing)."
    )
    status_code: int | None = Field(description="HTTP status, or SMTP reply code.")
    response: str = Field(description="The start of the receiver's answer.")
    error: str | None
    webhook_id: str
    duration_ms: float


class AttemptOut(BaseModel):
    number: int
    started_at: dt.datetime
    duration_ms: float
    outcome: str
    status_code: int | None
    retry_after: float | None
    error: str | None
    response: str | None


class DeliveryOut(BaseModel):
    id: str = Field(description="The delivery id: the `webhook-id` header, stable across retries.")
    channel: str
    notification: Literal["firing", "reminder", "resolved"]
    repeat: int
    status: Literal["pending", "sending", "delivered", "dead"]
    attempts: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    dead_at: dt.datetime | None
    last_error: str | None
    last_status_code: int | None
    last_response: str | None
    replays: int
    created_at: dt.datetime
    history: list[AttemptOut] = Field(description="Every attempt, oldest first.")


class AlertOut(BaseModel):
    id: int
    dedup_key: str
    rule: str
    model: str | None
    severity: str
    status: Literal["firing", "resolved"]
    notice: bool = Field(description="A one-off notice: resolved as raised, never reminded.")
    title: str
    summary: str
    fields: list[dict[str, str]]
    links: dict[str, str]
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    deliveries: list[DeliveryOut]


class ReplayOut(BaseModel):
    replayed: int


class SilenceCreate(_Strict):
    channel: Annotated[str, Field(pattern=NAME_PATTERN)] | None = Field(
        default=None, description="The channel to mute it on (null: every channel)."
    )
    model: ModelName | None = None
    rule: Annotated[str, Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$", max_length=100)] | None = (
        None
    )
    until: AwareDatetime
    comment: Annotated[str, Field(max_length=1000)] = ""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "channel": "ml-slack",
                    "model": "churn-classifier",
                    "until": "2026-11-25T08:00:00Z",
                    "comment": "retraining tonight",
                },
                {"rule": "queue.backlog", "until": "2026-11-24T18:00:00Z"},
            ]
        },
    )

    @model_validator(mode="after")
    def _mutes_something(self) -> SilenceCreate:
        if self.channel is None and self.model is None and self.rule is None:
            raise ValueError("a silence names a channel, a model or a rule (or several)")
        return self


class SilenceOut(BaseModel):
    id: int
    channel: str | None
    model: str | None
    rule: str | None
    until: dt.datetime
    active: bool
    comment: str
    created_by: str
    created_at: dt.datetime


def fields_out(pairs: list[Any]) -> list[dict[str, str]]:
    return [{"name": str(n), "value": str(v)} for n, v in pairs]
