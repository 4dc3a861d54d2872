"""The catalog's reads: monitored models and API keys, for the API, the UI and /metrics."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.tables import ApiKey, MonitoredModel


def models(
    session: Session,
    *,
    limit: int | None = None,
    after: str | None = None,
    status: str | None = None,
    name: str | None = None,
) -> list[MonitoredModel]:
    """Models by name (after the name ``after``; in ``status``; called ``name``),
    ``limit`` at most."""
    stmt = select(MonitoredModel).order_by(MonitoredModel.name).limit(limit)
    if after is not None:
        stmt = stmt.where(MonitoredModel.name > after)
    if status:
        stmt = stmt.where(MonitoredModel.status == status)
    if name is not None:
        stmt = stmt.where(MonitoredModel.name == name)
    return list(session.scalars(stmt))


def model(session: Session, model_id: int) -> MonitoredModel | None:
    return session.get(MonitoredModel, model_id)


def sorted_names(session: Session) -> list[str]:
    """Every model's name, in order."""
    return list(session.scalars(select(MonitoredModel.name).order_by(MonitoredModel.name)))


def names(session: Session, ids: Iterable[int] | None = None) -> dict[int, str]:
    """Model names by id: of these ids, or of every model."""
    stmt = select(MonitoredModel.id, MonitoredModel.name)
    if ids is not None:
        stmt = stmt.where(MonitoredModel.id.in_(list(ids)))
    return {int(i): str(n) for i, n in session.execute(stmt)}


def keys(session: Session, *, limit: int | None = None, after: str | None = None) -> list[ApiKey]:
    """API keys by id (after the id ``after``), ``limit`` at most."""
    stmt = select(ApiKey).order_by(ApiKey.id).limit(limit)
    if after is not None:
        stmt = stmt.where(ApiKey.id > after)
    return list(session.scalars(stmt))


def keys_by_age(session: Session) -> list[ApiKey]:
    """Every API key, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def live_keys_by_name(session: Session) -> list[ApiKey]:
    """The keys not revoked, by name."""
    stmt = select(ApiKey).where(ApiKey.revoked_at.is_(None)).order_by(ApiKey.name)
    return list(session.scalars(stmt))


def key(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)
