"""/v1/models/{name}/predictions and /feedback: what deployed models post."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Protocol

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, TypeAdapter, ValidationError
from sqlalchemy import and_, or_, select
from starlette.concurrency import run_in_threadpool

from app.auth import (
    IngestDep,
    ReviewerDep,
    SessionDep,
    SettingsDep,
    UnitOfWork,
    get_db,
    unit_of_work,
)
from app.catalog import service as catalog
from app.errors import (
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    validation_error_from_pydantic,
)
from app.ingest import feedback
from app.ingest.flows import find_exceptions, on_batch_stored, rule_config
from app.ingest.sketches import get_spec
from app.ingest.store import row_values, store_batch, validate_batch
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
    PredictionIn,
    PredictionOut,
)
from app.settings import Settings
from storage.base import utcnow
from storage.tables import Prediction

router = APIRouter(prefix="/v1/models/{name}", tags=["predictions"])

_records = TypeAdapter(list[PredictionIn])

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


def parse_json(raw: bytes, request: Request) -> Any:
    """The body as JSON; NaN/Infinity are parsed so the error can name their field."""
    ctype = request.headers.get("content-type", "application/json")
    if "json" not in ctype:
        raise UnsupportedMediaType(f"send application/json, not {ctype!r}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            data = json.loads(raw)  # accepts NaN and Infinity, refused later by field
        except ValueError as exc:
            raise ValidationFailed(
                f"the body is not valid JSON: {exc}", details=[{"loc": ["body"], "msg": str(exc)}]
            ) from None
    if b"\\u0000" in raw:  # one scan of the bytes; the walk only when it may be there
        where = _nul_at(data, [])
        if where is not None:
            raise ValidationFailed.at(
                where or ["body"],
                "contains the NUL character (U+0000), which PostgreSQL cannot store: remove it",
            )
    return data


def _nul_at(value: Any, loc: list[str | int]) -> list[str | int] | None:
    """Where the first string (or key) holding U+0000 is, if any."""
    if isinstance(value, str):
        return loc if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = [*loc, key] if "\x00" in key else _nul_at(item, [*loc, key])
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_at(item, [*loc, i])
            if found is not None:
                return found
    return None


def _parse_predictions(data: Any, settings: Settings) -> tuple[list[PredictionIn], list[str | int]]:
    if isinstance(data, dict) and "predictions" in data:
        items = data["predictions"]
        if not isinstance(items, list):
            raise ValidationFailed.at(["predictions"], "must be a list of records")
        if len(items) > settings.max_batch_records:
            raise PayloadTooLarge(
                f"batch of {len(items)} records is over the limit of "
                f"{settings.max_batch_records}: split it"
            )
        if not items:
            raise ValidationFailed.at(["predictions"], "the batch is empty")
        if set(data) != {"predictions"}:
            extra = sorted(set(data) - {"predictions"})[0]
            raise ValidationFailed.at([extra], "unknown field")
        try:
            return _records.validate_python(items), ["predictions"]
        except ValidationError as exc:
            raise validation_error_from_pydantic(
                exc.errors(), ["predictions"], data=items
            ) from None
    try:
        return [PredictionIn.model_validate(data)], []
    except ValidationError as exc:
        raise validation_error_from_pydantic(exc.errors(), data=data) from None


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
                        "oneOf": [
                            {"$ref": "#/components/schemas/PredictionIn"},
                            {"$ref": "#/components/schemas/PredictionBatch"},
                        ]
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

    def work() -> IngestResult:
        # The key, the model's schema, sketch and rules in one short read; validation,
        # the rows' values, their counts and the exception rules need no more, so they
        # run before the write transaction: SQLite's one write lock (the model's row
        # lock on PostgreSQL) is then held for the writes alone.
        with db.session(readonly=True) as session:
            caller.authorize(session)
            schema = catalog.active_model(session, name)
            spec = get_spec(session, schema.reference_id) if schema.reference_id else None
            rules = rule_config(session, schema)
        try:
            records, prefix = _parse_predictions(parse_json(raw, request), settings)
            now = utcnow()
            batch = validate_batch(schema, records, now=now, prefix=prefix)
            values = row_values(schema, batch, on_sqlite=db.is_sqlite, now=now, spec=spec)
            findings = find_exceptions(schema, batch, rules)
            with db.session() as session:
                model = catalog.active_model(session, name)
                if model.updated_at != schema.updated_at:  # changed meanwhile: check again
                    batch = validate_batch(model, records, now=now, prefix=prefix)
                    values = row_values(model, batch, on_sqlite=db.is_sqlite, now=now)
                stored = store_batch(session, model, batch, now=now, values=values)
                # (the rules run again in here if the model changed since they ran)
                exceptions = on_batch_stored(session, model, stored, now=now, findings=findings)
        except ValidationFailed:
            metrics.RECORDS_REJECTED.inc(name)
            raise
        metrics.RECORDS_INGESTED.inc(name, amount=len(stored.prediction_ids))
        return IngestResult(
            accepted=len(stored.prediction_ids), duplicates=stored.duplicates, exceptions=exceptions
        )

    return await run_in_threadpool(work)


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
    name: str,
    session: SessionDep,
    _reviewer: ReviewerDep,
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
    model = catalog.get_model(session, name)
    stmt = (
        select(Prediction)
        .where(Prediction.model_id == model.id)
        .order_by(Prediction.ts, Prediction.id)
        .limit(limit + 1)
    )
    if start is not None:
        stmt = stmt.where(Prediction.ts >= start)
    if end is not None:
        stmt = stmt.where(Prediction.ts < end)
    after = decode_cursor(cursor)
    if after is not None:
        ts, last_id = cursor_position(after)
        stmt = stmt.where(
            or_(Prediction.ts > ts, and_(Prediction.ts == ts, Prediction.id > last_id))
        )
    rows, next_cursor = page(
        session.scalars(stmt).all(), limit, lambda p: {"ts": p.ts.isoformat(), "id": p.id}
    )
    return Page[PredictionOut](items=[prediction_out(p) for p in rows], next_cursor=next_cursor)


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
