"""/v1/models/{name}/drift: evaluations, evaluate-now, Evidently reports, incidents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from app.auth import AdminDep, ReviewerDep, SessionDep, SettingsDep
from app.catalog import service as catalog
from app.drift import service
from app.drift.report import report_page, report_response
from app.drift.tables import DriftEvaluation, DriftIncident
from app.pagination import CursorQuery, LimitQuery, cursor_field, page
from app.params import EvaluationQuery
from app.schemas import Page
from storage.base import utcnow

router = APIRouter(prefix="/v1/models/{name}/drift", tags=["drift"])


@router.get("", response_model=Page[dict[str, Any]])
def list_evaluations(
    name: str,
    session: SessionDep,
    _reviewer: ReviewerDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    drifted: Annotated[bool | None, Query(description="Only drifted (or clean) windows.")] = None,
) -> Page[dict[str, Any]]:
    """Evaluations of the model's windows, newest first."""
    model = catalog.get_model(session, name)
    stmt = (
        select(DriftEvaluation)
        .where(DriftEvaluation.model_id == model.id)
        .order_by(DriftEvaluation.id.desc())
        .limit(limit + 1)
    )
    if (after := cursor_field(cursor, "id", int)) is not None:
        stmt = stmt.where(DriftEvaluation.id < after)
    if drifted is not None:
        stmt = stmt.where(DriftEvaluation.drifted == drifted)
    rows, next_cursor = page(session.scalars(stmt).all(), limit, lambda e: {"id": e.id})
    return Page[dict[str, Any]](
        items=[service.evaluation_out(e) for e in rows], next_cursor=next_cursor
    )


@router.post("/evaluate")
def evaluate_now(
    name: str, session: SessionDep, _admin: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    """Evaluate the current window now (including the step in progress) and return it."""
    model = catalog.active_model(session, name)
    evaluation = service.evaluate_now(session, model=model, settings=settings, now=utcnow())
    return service.evaluation_out(evaluation)


@router.get("/report", response_class=HTMLResponse)
def drift_report(
    name: str,
    session: SessionDep,
    _reviewer: ReviewerDep,
    settings: SettingsDep,
    evaluation: EvaluationQuery,
) -> HTMLResponse:
    """A standalone Evidently HTML report of that window (a bounded sample) against the baseline."""
    model = catalog.get_model(session, name)
    report = report_page(
        session, model=model, evaluation_id=evaluation, sample_rows=settings.report_sample_rows
    )
    return report_response(report)


@router.get("/incidents", response_model=Page[dict[str, Any]])
def list_incidents(
    name: str,
    session: SessionDep,
    _reviewer: ReviewerDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
) -> Page[dict[str, Any]]:
    """Drift incidents, newest first: opened after k of m drifted windows, closed after q clean."""
    model = catalog.get_model(session, name)
    stmt = (
        select(DriftIncident)
        .where(DriftIncident.model_id == model.id)
        .order_by(DriftIncident.id.desc())
        .limit(limit + 1)
    )
    if (after := cursor_field(cursor, "id", int)) is not None:
        stmt = stmt.where(DriftIncident.id < after)
    if status:
        stmt = stmt.where(DriftIncident.status == status)
    rows, next_cursor = page(session.scalars(stmt).all(), limit, lambda i: {"id": i.id})
    return Page[dict[str, Any]](
        items=[service.incident_out(i) for i in rows], next_cursor=next_cursor
    )
