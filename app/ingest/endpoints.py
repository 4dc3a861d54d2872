"""/v1/models/{name}/predictions and /feedback: what deployed models post."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.auth import (
    IngestDep,
    SessionDep,
    SettingsDep,
    UnitOfWork,
    get_db,
    unit_of_work,
)
from app.catalog import service as catalog
from app.catalog.deps import ReviewedModelDep
from app.db import Database
from app.errors import Conflict, DriftdeskError, PayloadTooLarge, ValidationFailed
from app.ingest import feedback, repository
from app.ingest.flows import cached_target, forget_target, prepare, read_target, write
from app.ingest.parse import batch_parser
from app.ingest.store import ModelChanged, Raced, StoredBatch
from app.ops import metrics
from app.pagination import (
    CursorQuery,
    LimitQuery,
    cursor_position,
    decode_cursor,
    page,
)
from app.schemas import (
    FeedbackBatch,
    FeedbackResult,
    IngestResult,
    Page,
    PredictionBatch,
    PredictionIn,
    PredictionOut,
)
from app.settings import Settings
from storage.base import utcnow

router = APIRouter(prefix="/v1/models/{name}", tags=["predictions"])


EXAMPLE = {
    "predictions": [
        {
            "id": "req-8f3a",
            "timestamp": "2026-11-24T10:00:00Z",
            "features": {"age": 41, "plan": "pro"},
            "prediction": "churn",
            "confidence": 0.54,
            "model_version": "2026-11-01",
        }
    ]
}


def inline_schema(body_class: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of a request body's pydantic class, its definitions inlined (no
    ``$ref`` to resolve).

    The route reads its body itself (FastAPI does not parse it), so FastAPI puts
    no component for it in /openapi.json: references to one would dangle.
    """
    schema = body_class.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


@router.post(
    "/predictions",
    status_code=202,
    response_model=IngestResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [inline_schema(PredictionIn), inline_schema(PredictionBatch)]
                    },
                    "example": EXAMPLE,
                }
            },
        }
    },
)
async def post_predictions(
    name: str,
    request: Request,
    caller: Annotated[UnitOfWork, unit_of_work("ingest")],
    settings: SettingsDep,
) -> IngestResult:
    """Post one record or `{"predictions": [...]}`. 202 means durably stored.

    A record whose `id` was accepted before counts as a duplicate and changes nothing.
    A batch with any invalid record is rejected whole (422 naming the field).
    """
    raw = await request.body()
    db = get_db(request)
    content_type = request.headers.get("content-type")

    def work() -> IngestResult:
        for attempt in range(MODEL_CHANGE_RETRIES):
            try:
                stored, exceptions = _ingest(
                    db, caller, name, raw, content_type, settings, fresh=attempt > 0
                )
                break
            except ModelChanged:  # changed or archived since it was read: start again
                forget_target(db, name)
                continue
        else:
            raise Conflict(
                f"model {name!r} kept changing while the batch was stored: send it again"
            )
        metrics.RECORDS_INGESTED.inc(name, amount=len(stored.prediction_ids))
        return IngestResult(
            accepted=len(stored.prediction_ids), duplicates=stored.duplicates, exceptions=exceptions
        )

    return await run_in_threadpool(work)


MODEL_CHANGE_RETRIES = 3


def _ingest(
    db: Database,
    caller: UnitOfWork,
    name: str,
    raw: bytes,
    content_type: str | None,
    settings: Settings,
    *,
    fresh: bool = False,
) -> tuple[StoredBatch, int]:
    """Validate and store one body; returns what was stored and the tickets it opened.

    The model, its sketch and rules come from the process's cache, else (or when
    ``fresh``) from one short read with the key check. The decoding, validation,
    the rows' values, their counts and the exception rules need no more, so they
    run before the write transaction, as does (on PostgreSQL) the reservation of
    sequence numbers and row ids: the write transaction holds SQLite's one write
    lock for the writes alone, and on PostgreSQL takes no lock but the tickets'
    (app.ingest.flows). With a cached model the key is checked in the
    reservation (PostgreSQL) or the write transaction (SQLite); a body refused
    before that is answered 401/403 first, as everywhere (UnitOfWork).
    """
    target = None if fresh else cached_target(db, name)
    authorize: Callable[[Session], object] | None = caller.authorize
    if target is None:
        target = read_target(db, name, caller.authorize)
        authorize = None
    now = utcnow()
    try:
        batch = batch_parser(raw, content_type, now=now, settings=settings)(target.model)
    except DriftdeskError as refused:
        if authorize is not None:  # a caller without a valid key gets its 401/403 first
            with db.session(readonly=True) as session:
                authorize(session)
        if isinstance(refused, ValidationFailed):
            metrics.RECORDS_REJECTED.inc(name)
        raise
    prepared = prepare(
        db, target.model, batch, spec=target.spec, rules=target.rules, now=now, authorize=authorize
    )
    if isinstance(prepared, StoredBatch):  # nothing new: every record was a duplicate
        return prepared, 0
    for recheck in (False, True):
        try:
            with db.session() as session:
                return write(session, prepared, recheck=recheck)
        except Raced:  # (SQLite: another writer stored one of the ids meanwhile)
            continue
    raise AssertionError("unreachable: a recheck under SQLite's write lock cannot race")


class StoredPrediction(Protocol):
    """What :func:`prediction_out` reads: a :class:`Prediction`, or a Core row of its columns."""

    @property
    def client_id(self) -> str: ...
    @property
    def ts(self) -> dt.datetime: ...
    @property
    def received_at(self) -> dt.datetime: ...
    @property
    def features(self) -> dict[str, Any]: ...
    @property
    def prediction(self) -> Any: ...
    @property
    def confidence(self) -> float | None: ...
    @property
    def probabilities(self) -> dict[str, float] | None: ...
    @property
    def model_version(self) -> str | None: ...
    @property
    def actual(self) -> Any | None: ...


def prediction_out(p: StoredPrediction) -> PredictionOut:
    return PredictionOut(
        id=p.client_id,
        timestamp=p.ts,
        received_at=p.received_at,
        features=p.features,
        prediction=p.prediction,
        confidence=p.confidence,
        probabilities=p.probabilities,
        model_version=p.model_version,
        label=p.actual,
    )


@router.get("/predictions", response_model=Page[PredictionOut])
def list_predictions(
    session: SessionDep,
    model: ReviewedModelDep,
    start: Annotated[
        AwareDatetime | None, Query(description="Inclusive, RFC 3339 with zone.")
    ] = None,
    end: Annotated[
        AwareDatetime | None, Query(description="Exclusive, RFC 3339 with zone.")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[PredictionOut]:
    """Stored predictions in timestamp order, oldest first."""
    after = decode_cursor(cursor)
    rows = repository.predictions(
        session,
        model.id,
        limit=limit + 1,
        start=start,
        end=end,
        after=cursor_position(after) if after is not None else None,
    )
    shown, next_cursor = page(rows, limit, lambda p: {"ts": p.ts.isoformat(), "id": p.id})
    return Page[PredictionOut](items=[prediction_out(p) for p in shown], next_cursor=next_cursor)


@router.post("/feedback", status_code=202, response_model=FeedbackResult)
def post_feedback(
    name: str, body: FeedbackBatch, session: SessionDep, _key: IngestDep, settings: SettingsDep
) -> FeedbackResult:
    """Ground truth that arrives later, by prediction id. Unknown ids are listed, not fatal."""
    if len(body.feedback) > settings.max_batch_records:
        raise PayloadTooLarge(
            f"batch of {len(body.feedback)} records is over the limit of "
            f"{settings.max_batch_records}: split it"
        )
    model = catalog.active_model(session, name)
    return feedback.record_feedback(session, model=model, items=body.feedback, now=utcnow())
