"""/v1/models: the monitored models (admin writes; reviewers and models read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth import AdminDep, ReaderDep, ReviewerDep, SessionDep
from app.catalog import repository
from app.catalog import service as catalog
from app.pagination import CursorQuery, LimitQuery, cursor_field, page
from app.schemas import ModelCreate, ModelOut, ModelPatch, Page

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.post("", status_code=201, response_model=ModelOut)
def create_model(body: ModelCreate, session: SessionDep, _admin: AdminDep) -> ModelOut:
    """Register a model to monitor. A second model with the same name is a 409."""
    return catalog.model_out(session, catalog.create_model(session, body=body))


@router.get("", response_model=Page[ModelOut])
def list_models(
    session: SessionDep,
    _reviewer: ReviewerDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    status: Annotated[str | None, Query(pattern="^(active|archived)$")] = None,
) -> Page[ModelOut]:
    after = cursor_field(cursor, "name", str)
    rows = repository.models(session, limit=limit + 1, after=after, status=status)
    rows, next_cursor = page(rows, limit, lambda m: {"name": m.name})
    return Page[ModelOut](
        items=[catalog.model_out(session, m) for m in rows], next_cursor=next_cursor
    )


@router.get("/{name}", response_model=ModelOut)
def get_model(name: str, session: SessionDep, _reader: ReaderDep) -> ModelOut:
    """One model's schema; an ingest key may read it (a client checks records against it)."""
    return catalog.model_out(session, catalog.get_model(session, name))


@router.patch("/{name}", response_model=ModelOut)
def patch_model(name: str, body: ModelPatch, session: SessionDep, _admin: AdminDep) -> ModelOut:
    """Change thresholds, window, drift settings, options; or archive/restore (`status`)."""
    model = catalog.patch_model(session, model=catalog.get_model(session, name), body=body)
    return catalog.model_out(session, model)


@router.delete("/{name}", response_model=ModelOut)
def archive_model(name: str, session: SessionDep, _admin: AdminDep) -> ModelOut:
    """Archive the model: it stops accepting traffic; no data is dropped."""
    model = catalog.archive_model(session, model=catalog.get_model(session, name))
    return catalog.model_out(session, model)
