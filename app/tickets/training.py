"""/v1/models/{name}/training-data: the human labels, streamed (API.md: Retraining data)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from app.auth import ReviewerDep, get_db
from app.catalog import service as catalog
from app.errors import ValidationFailed
from exceptions_queue import export
from storage.base import utcnow

router = APIRouter(prefix="/v1/models/{name}", tags=["retraining data"])

_CONTENT: dict[str, Any] = {media: {} for media in export.MEDIA_TYPES.values()}


@router.get(
    "/training-data",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One row per current human label, oldest first.",
            "content": _CONTENT,
        },
        404: {"description": "No such model."},
    },
)
def training_data(
    name: str,
    request: Request,
    _reviewer: ReviewerDep,
    fmt: Annotated[export.Format, Query(alias="format", description="jsonl, csv or parquet.")] = (
        "jsonl"
    ),
    since: Annotated[
        AwareDatetime | None,
        Query(description="Labels made at or after this time (RFC 3339 with zone)."),
    ] = None,
    until: Annotated[
        AwareDatetime | None,
        Query(description="Labels made before this time; default: now."),
    ] = None,
) -> StreamingResponse:
    """Every current human label, and every ground truth posted to `/feedback`, with the
    prediction's features, output and confidence, model version, ticket kind (audits
    apart from hard cases), `source` (`review`, `adjudication` or `feedback`), `weight`
    (the inverse of the probability with which the record was chosen for review; 1 for
    feedback and for labels that were not a probability sample, such as drift samples),
    reviewer and time.

    Streamed page by page, oldest label first, so any size can be exported. For
    incremental exports pass the previous response's `X-Driftdesk-Until` header as
    `since`. A label replaced by an adjudication (or a later review of the same
    prediction) is no longer exported; the replacing label is. Feedback sent again for a
    prediction replaces its ground truth (and its time).
    """
    end = until or utcnow()
    if since is not None and since > end:
        raise ValidationFailed.at(["query", "since"], "since is after until")
    db = get_db(request)
    with db.session(readonly=True) as session:
        model = catalog.get_model(session, name)
        spec = export.ExportSpec(
            model_id=model.id,
            task=model.task,
            features=tuple((f["name"], f["type"]) for f in model.features),
            since=since,
            until=end,
        )
    return StreamingResponse(
        export.stream(lambda: db.session(readonly=True), spec, fmt),
        media_type=export.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{name}-training-data.{fmt}"',
            "X-Driftdesk-Until": end.isoformat().replace("+00:00", "Z"),
        },
    )
