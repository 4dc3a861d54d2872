"""GET /v1/workforce (API.md: Workforce)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth import ReviewerDep, SessionDep, SettingsDep
from app.catalog import service as catalog
from app.workforce import service
from app.workforce.schemas import Workforce
from exceptions_queue.states import Kind
from storage.base import utcnow

router = APIRouter(tags=["workforce"])


@router.get(
    "/v1/workforce",
    response_model=Workforce,
    responses={404: {"description": "No such model."}},
)
def get_workforce(
    session: SessionDep,
    settings: SettingsDep,
    _reviewer: ReviewerDep,
    model: Annotated[str | None, Query(description="Only this model's queues.")] = None,
    kind: Annotated[Kind | None, Query(description="Only this kind of ticket.")] = None,
) -> Workforce:
    """Arrivals per hour, handle times, active reviewers, throughput, time to first claim,
    and the forecast at current staffing: backlog at +1 h/+4 h/+24 h with a band, when each
    priority's first ticket breaches its SLA, and reviewers needed now and per hour.

    Reviewers serve every model, so the forecast and staffing are of the whole queue;
    `model` and `kind` narrow what is listed."""
    if model is not None:
        catalog.get_model(session, model)
    return service.workforce(session, now=utcnow(), settings=settings, model=model, kind=kind)
