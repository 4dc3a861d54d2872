"""Monitored models: create, read, change, archive."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.catalog import repository
from app.errors import Conflict, NotFound, ValidationFailed
from app.schemas import (
    DriftSettings,
    FeatureSpec,
    ModelCreate,
    ModelOut,
    ModelPatch,
    PerformanceSettings,
    ReferenceBrief,
    SettingMismatch,
)
from storage.base import utcnow
from storage.options import ModelOptions
from storage.tables import MonitoredModel, Reference

# A model's name never changes (PATCH cannot rename, DELETE archives), so the
# name of an id is cached for good — per database: ids of different databases
# (tests, a process serving one after another) are different models.
_names: dict[tuple[str, int], str] = {}
_names_lock = threading.Lock()


def model_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """The names of these model ids (cached: names never change)."""
    database = session.get_bind().engine.url.render_as_string()
    wanted = set(ids)
    with _names_lock:
        known = {i: _names[database, i] for i in wanted if (database, i) in _names}
    missing = wanted - known.keys()
    if missing:
        found = repository.names(session, missing)
        with _names_lock:
            if len(_names) > 10_000:
                _names.clear()
            _names.update({(database, i): n for i, n in found.items()})
        known |= found
    return known


def get_model(session: Session, name: str) -> MonitoredModel:
    """The model called ``name``, or a 404 that says how to find the right name."""
    stmt = select(MonitoredModel).where(MonitoredModel.name == name)
    model = session.scalar(stmt)
    if model is None:
        raise NotFound(f"no model named {name!r}: list them with GET /v1/models")
    return model


def active_model(session: Session, name: str) -> MonitoredModel:
    """A model that accepts traffic (not archived)."""
    model = get_model(session, name)
    if model.status != "active":
        raise Conflict(
            f'model {name!r} is archived: PATCH it with {{"status": "active"}} to resume it'
        )
    return model


def performance_settings(
    settings: PerformanceSettings | None, *, task: str, labels: list[str] | None
) -> dict[str, object] | None:
    """The settings as stored: checked against the model's task (422 naming the field)."""
    if settings is None:
        return None
    try:
        return settings.for_task(task, labels).model_dump()
    except SettingMismatch as exc:
        raise ValidationFailed.at(["performance", exc.field], exc.message) from None


def create_model(session: Session, *, body: ModelCreate) -> MonitoredModel:
    """Register a model; names are unique, archived ones included."""
    performance = performance_settings(body.performance, task=body.task, labels=body.labels)
    if session.scalar(select(MonitoredModel.id).where(MonitoredModel.name == body.name)):
        raise Conflict(f"a model named {body.name!r} already exists")
    now = utcnow()
    model = MonitoredModel(
        name=body.name,
        task=body.task,
        features=[f.model_dump() for f in body.features],
        labels=body.labels,
        window=body.window.spec().to_dict(),
        confidence_threshold=body.confidence_threshold,
        drift=body.drift.model_dump(),
        strict=body.strict,
        options=body.options.model_dump(),
        performance=performance,
        status="active",
        record_count=0,
        created_at=now,
        updated_at=now,
    )
    session.add(model)
    try:
        session.flush()
    except IntegrityError:  # a concurrent create of the same name
        raise Conflict(f"a model named {body.name!r} already exists") from None
    return model


def patch_model(session: Session, *, model: MonitoredModel, body: ModelPatch) -> MonitoredModel:
    """Change the settings that can change without a new reference."""
    changes = body.model_dump(exclude_unset=True)
    if "performance" in changes:  # checked before anything changes
        model.performance = performance_settings(
            body.performance, task=model.task, labels=model.labels
        )
    if "window" in changes and body.window is not None:
        model.window = body.window.spec().to_dict()
    if "confidence_threshold" in changes:
        model.confidence_threshold = body.confidence_threshold
    if body.drift is not None:
        model.drift = body.drift.model_dump()
    if body.strict is not None:
        model.strict = body.strict
    if body.options is not None:
        model.options = body.options.model_dump()
    if body.status is not None and body.status != model.status:
        model.status = body.status
        model.archived_at = utcnow() if body.status == "archived" else None
    model.updated_at = utcnow()
    return model


def archive_model(session: Session, *, model: MonitoredModel) -> MonitoredModel:
    """Archive: stop accepting traffic, keep every row (PATCH status=active restores it)."""
    if model.status != "archived":
        model.status = "archived"
        model.archived_at = model.updated_at = utcnow()
    return model


def model_out(session: Session, model: MonitoredModel) -> ModelOut:
    ref = session.get(Reference, model.reference_id) if model.reference_id else None
    return ModelOut(
        name=model.name,
        task=model.task,
        features=[FeatureSpec(**f) for f in model.features],
        labels=model.labels,
        window=model.window,
        confidence_threshold=model.confidence_threshold,
        drift=DriftSettings(**model.drift),
        strict=model.strict,
        options=ModelOptions(**model.options),
        performance=PerformanceSettings(**model.performance) if model.performance else None,
        status=model.status,
        records=model.record_count,
        reference=(
            ReferenceBrief(id=ref.id, rows=ref.rows, source=ref.source, created_at=ref.created_at)
            if ref
            else None
        ),
        created_at=model.created_at,
        updated_at=model.updated_at,
        archived_at=model.archived_at,
    )
