"""/v1/models/{name}/performance: windows of realized, audited and estimated performance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from app import incidents
from app.auth import ReviewerDep, SessionDep, get_db
from app.catalog.deps import ReviewedModelDep
from app.errors import ValidationFailed
from app.pagination import CursorQuery, LimitQuery, cursor_field, page
from app.performance import labels, service
from app.performance.schemas import PerformanceIncidentOut, PerformanceWindow
from app.performance.tables import PerformanceIncident
from app.schemas import Page

router = APIRouter(prefix="/v1/models/{name}/performance", tags=["performance"])


def _labels_synced(request: Request, _reviewer: ReviewerDep) -> None:
    """Reviewers' label changes noted since the last read move into the audited sums
    first, in transactions of their own that commit before this request's read begins
    (a dependency declared before the unit of work)."""
    labels.sync_all_pending(get_db(request))


LabelsSynced = Annotated[None, Depends(_labels_synced)]


@router.get("", response_model=Page[PerformanceWindow])
def list_windows(
    _synced: LabelsSynced,
    session: SessionDep,
    model: ReviewedModelDep,
    start: Annotated[
        AwareDatetime | None, Query(description="Windows with records at or after this time.")
    ] = None,
    end: Annotated[
        AwareDatetime | None, Query(description="Windows with records before this time.")
    ] = None,
    model_version: Annotated[
        str | None,
        Query(max_length=100, description="Only this model version's records (all: omit)."),
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[dict[str, Any]]:
    """One item per window step, newest first: the realized value (ground truth) with its
    coverage, the audited value (reviewers' labels, design-weighted), the label-free
    estimate, the reference's values, and whether the window is degraded.

    Each window is read as the sum of its blocks' sums (no rows are rescanned), so
    labels that arrive late update the windows of their predictions at once.
    """
    if start is not None and end is not None and end <= start:
        raise ValidationFailed.at(["query", "end"], "end must be after start")
    before = cursor_field(cursor, "block", int)
    last = service.last_blocks(
        session,
        model=model,
        before=before,
        model_version=model_version,
        start=start,
        end=end,
        limit=limit + 1,
    )
    shown, next_cursor = page(last, limit, lambda b: {"block": b})
    items = [
        item
        for item, _ in service.windows(
            session, model=model, last=shown, model_version=model_version
        )
    ]
    service.attach_incidents(session, model, items)
    return Page[dict[str, Any]](items=items, next_cursor=next_cursor)


@router.get("/incidents", response_model=Page[PerformanceIncidentOut])
def list_incidents(
    session: SessionDep,
    model: ReviewedModelDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
) -> Page[PerformanceIncidentOut]:
    """Performance incidents, newest first: opened after k of the last m judged windows were
    degraded, closed after q in a row were not (the drift incidents' debounce, same options)."""
    before = cursor_field(cursor, "id", int)
    rows = incidents.listed(
        session, PerformanceIncident, model.id, limit=limit + 1, before=before, status=status
    )
    shown, next_cursor = page(rows, limit, lambda i: {"id": i.id})
    return Page[PerformanceIncidentOut](
        items=[PerformanceIncidentOut.model_validate(i, from_attributes=True) for i in shown],
        next_cursor=next_cursor,
    )
