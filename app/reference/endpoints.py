"""/v1/models/{name}/reference: the baseline drift is measured against."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.auth import AdminDep, IngestDep, ReaderDep, SessionDep, SettingsDep, get_db
from app.catalog import service as catalog
from app.errors import ValidationFailed
from app.ingest.parse import parse_json
from app.reference import service as reference
from storage.tables import Prediction

router = APIRouter(prefix="/v1/models/{name}/reference", tags=["reference"])

REFERENCE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["records"],
                    "properties": {
                        "records": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "features": {"type": "object"},
                                    "prediction": {},
                                    "confidence": {"type": "number"},
                                    "label": {},
                                },
                            },
                        }
                    },
                },
                "example": {
                    "records": [
                        {
                            "features": {"age": 41, "plan": "pro"},
                            "prediction": "stay",
                            "label": "stay",
                        }
                    ]
                },
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


@router.post("", status_code=201, openapi_extra=REFERENCE_BODY)
async def upload_reference(
    name: str, request: Request, key: IngestDep, settings: SettingsDep
) -> dict[str, Any]:
    """Replace the model's baseline: JSON `records`, or a CSV/Parquet upload in field `file`.

    Returns the new baseline's summary. At least 100 rows; the live window is
    re-counted against the new bins at once.
    """
    ctype = request.headers.get("content-type", "")
    db = get_db(request)
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed.at(["file"], "send the CSV or Parquet file in form field 'file'")
        data = await upload.read()
        filename, file_type = upload.filename, upload.content_type
    else:
        data = await request.body()
        filename = file_type = None

    def work() -> dict[str, Any]:
        with db.session() as session:
            model = catalog.active_model(session, name)
            if ctype.startswith("multipart/form-data"):
                frame = reference.read_table(data, filename, file_type)
                source = "parquet" if data[:4] == b"PAR1" else "csv"
                columns = reference.columns_from_frame(model, frame, from_text=source == "csv")
            else:
                body = parse_json(data, request.headers.get("content-type"))
                if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                    raise ValidationFailed.at(
                        ["records"], 'send {"records": [...]} or a file upload'
                    )
                if set(body) != {"records"}:
                    raise ValidationFailed.at([sorted(set(body) - {"records"})[0]], "unknown field")
                columns = reference.columns_from_records(model, body["records"])
                source = "json"
            ref = reference.set_reference(
                session,
                model=model,
                columns=columns,
                source=source,
                created_by=key.key_id,
                max_rows=settings.max_reference_rows,
                sample_rows=settings.reference_sample_rows,
            )
            return reference.reference_out(ref)

    return await run_in_threadpool(work)


class FromWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: AwareDatetime
    end: AwareDatetime


@router.post("/from-window", status_code=201)
def reference_from_window(
    name: str, body: FromWindow, session: SessionDep, admin: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    """Freeze the live traffic in `[start, end)` as the new baseline."""
    if body.end <= body.start:
        raise ValidationFailed.at(["end"], "end must be after start")
    model = catalog.active_model(session, name)
    stmt = (
        select(Prediction)
        .where(
            Prediction.model_id == model.id, Prediction.ts >= body.start, Prediction.ts < body.end
        )
        .order_by(Prediction.ts, Prediction.id)
        .limit(settings.max_reference_rows + 1)
    )
    rows = [p for chunk in reference.iter_prediction_chunks(session, stmt) for p in chunk]
    columns = reference.with_outcomes(model, rows, reference.prediction_columns(model, rows))
    ref = reference.set_reference(
        session,
        model=model,
        columns=columns,
        source="window",
        created_by=admin.key_id,
        max_rows=settings.max_reference_rows,
        sample_rows=settings.reference_sample_rows,
        window=(body.start, body.end),
    )
    return reference.reference_out(ref)


@router.get("")
def get_reference(name: str, session: SessionDep, _reader: ReaderDep) -> dict[str, Any]:
    """The current baseline's summary: rows, source, per-feature statistics."""
    model = catalog.get_model(session, name)
    return reference.reference_out(reference.current_reference(session, model))
