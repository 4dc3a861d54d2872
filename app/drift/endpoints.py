"""/v1/models/{name}/drift: evaluations, evaluate-now, Evidently reports, incidents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from app import incidents
from app.auth import AdminDep, SessionDep, SettingsDep
from app.catalog import service as catalog
from app.catalog.deps import ReviewedModelDep
from app.drift import repository, service
from app.drift.report import report_page, report_response
from app.drift.tables import DriftIncident
from app.pagination import CursorQuery, LimitQuery, cursor_field, page
from app.params import EvaluationQuery
from app.schemas import Page
from storage.base import utcnow

router = APIRouter(prefix="/v1/models/{name}/drift", tags=["drift"])


@router.get("", response_model=Page[dict[str, Any]])
def list_evaluations(
    session: SessionDep,
    model: ReviewedModelDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    drifted: Annotated[bool | None, Query(description="Only drifted (or clean) windows.")] = None,
) -> Page[dict[str, Any]]:
    """Evaluations of the model's windows, newest first."""
    before = cursor_field(cursor, "id", int)
    rows = repository.evaluations(
        session, model.id, limit=limit + 1, before=before, drifted=drifted
    )
    shown, next_cursor = page(rows, limit, lambda e: {"id": e.id})
    return Page[dict[str, Any]](
        items=[service.evaluation_out(e) for e in shown], next_cursor=next_cursor
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
    session: SessionDep,
    model: ReviewedModelDep,
    settings: SettingsDep,
    evaluation: EvaluationQuery,
) -> HTMLResponse:
    """A standalone Evidently HTML report of that window (a bounded sample) against the baseline."""
    report = report_page(
        session, model=model, evaluation_id=evaluation, sample_rows=settings.report_sample_rows
    )
    return report_response(report)


@router.get("/incidents", response_model=Page[dict[str, Any]])
def list_incidents(
    session: SessionDep,
    model: ReviewedModelDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
) -> Page[dict[str, Any]]:
    """Drift incidents, newest first: opened after k of m drifted windows, closed after q clean."""
    before = cursor_field(cursor, "id", int)
    rows = incidents.listed(
        session, DriftIncident, model.id, limit=limit + 1, before=before, status=status
    )
    shown, next_cursor = page(rows, limit, lambda i: {"id": i.id})
    return Page[dict[str, Any]](
        items=[service.incident_out(i) for i in shown], next_cursor=next_cursor
    )
