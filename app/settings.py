"""Configuration: one pydantic-settings class, read from the environment and `.env`.

Every setting is prefixed ``DRIFTDESK_``; the README's configuration table lists
them all with their defaults.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DRIFTDESK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite:///./driftdesk.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )
    bootstrap_admin_key: SecretStr | None = Field(
        default=None, description="If set and no admin key exists, this secret becomes one."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL used in links sent in alerts."
    )
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    # limits
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, description="Reference CSV/Parquet uploads."
    )
    max_batch_records: int = Field(default=10_000, ge=1)
    max_reference_rows: int = Field(default=1_000_000, ge=100)
    reference_sample_rows: int = Field(
        default=20_000, ge=100, description="Reference rows kept for Evidently reports."
    )
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        default="FULL", description="FULL makes every 202 survive power loss, not only a crash."
    )
    db_pool_size: int = Field(default=10, ge=1)

    metrics_token: SecretStr | None = Field(
        default=None,
        description="If set, GET /metrics needs 'Authorization: Bearer <this token>'.",
    )

    # slow or idle clients (`driftdesk serve`; see app.serving)
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="A request's headers must arrive within this."
    )
    body_read_timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="Longest wait for the next piece of a body."
    )
    body_min_bytes_per_second: float = Field(
        default=1024.0, ge=0, description="Average a body must keep once it has taken that long."
    )
    keep_alive_seconds: int = Field(
        default=5, ge=1, le=3600, description="Idle keep-alive connections close after this."
    )
    max_connections: int = Field(
        default=1000, ge=1, description="Open connections per process; more get 503 at once."
    )

    # background loops
    evaluate_interval_seconds: float = Field(default=5.0, gt=0)
    lease_reaper_interval_seconds: float = Field(default=10.0, gt=0)
    dispatch_interval_seconds: float = Field(default=1.0, gt=0)

    # storage
    retention_days: int = Field(
        default=30,
        ge=0,
        description="Raw prediction rows older than this are deleted (0 keeps them forever); "
        "rows a label or an unfinished ticket needs are kept.",
    )
    retention_interval_seconds: float = Field(default=300.0, gt=0)

    # drift
    drift_min_rows: int = Field(default=200, ge=1)
    report_sample_rows: int = Field(default=5_000, ge=100)

    # queue
    default_lease_seconds: int = Field(default=900, ge=5, le=86_400)

    # alerting
    allow_private_targets: bool = Field(
        default=False,
        description="Allow webhook/Slack targets on loopback or private networks.",
    )
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "driftdesk@localhost"
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    alert_send_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="How long a webhook or Slack POST may take."
    )
    alert_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A claimed delivery not marked within this is sent again (same webhook-id); "
        "keep it above both send timeouts.",
    )
    alert_repeat_interval_seconds: float = Field(
        default=4 * 3600.0, gt=0, description="Remind of a still-firing alert this often."
    )
    alert_rules_interval_seconds: float = Field(default=30.0, gt=0)
    alert_dispatch_concurrency: int = Field(default=4, ge=1, le=64)
    alert_slack_min_interval_seconds: float = Field(
        default=1.0, ge=0, description="Default rate limit of a Slack channel (Slack: ~1 msg/s)."
    )
    alert_queue_backlog: int = Field(
        default=500, ge=1, description="Open tickets of one model above which queue.backlog fires."
    )
    alert_data_quality_surge: int = Field(
        default=100,
        ge=1,
        description="Predictions of one model with data-quality problems in an hour that fire "
        "data_quality.surge.",
    )

    # workforce: the queue's forecast and staffing
    workforce_lead_time_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=86_400,
        description="queue.staffing fires when the forecast says a ticket breaches its SLA "
        "within this time.",
    )
    workforce_active_seconds: float = Field(
        default=900.0,
        gt=0,
        description="A reviewer who claimed or finished a ticket this recently counts as active.",
    )
    workforce_recent_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="The recent arrival rate (the forecast's rate until a week of history gives "
        "an hour-of-week profile) looks back four times this far and reads the rate since the "
        "last change of rate it finds there, else over the whole look-back.",
    )
    workforce_sla_target: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        description="The share of tickets the staffing plan keeps within their SLA.",
    )

    # UI
    session_secret: SecretStr | None = Field(
        default=None,
        description="Signs UI session cookies; generated per process if unset (sign-ins then "
        "do not survive a restart or span replicas).",
    )

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "DRIFTDESK_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL"
            )
        # driftdesk talks to PostgreSQL through psycopg 3 (sync); the bare scheme would
        # pick psycopg2 and +asyncpg an async driver, so both are mapped onto it.
        for prefix in ("postgresql://", "postgresql+asyncpg://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                value = "postgresql+psycopg://" + value.removeprefix(prefix)
        return value


@lru_cache
def get_settings() -> Settings:
    """The process's settings, validated once."""
    return Settings()
