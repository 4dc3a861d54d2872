"""/v1/models/{name}/reference: the baseline drift is measured against."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from app.auth import AdminDep, IngestDep, ReaderDep, SessionDep, SettingsDep, get_db
from app.catalog import service as catalog
from app.errors import ValidationFailed
from app.ingest import parse
from app.ingest.columns import Columns
from app.reference import reading
from app.reference import service as reference
from storage.tables import MonitoredModel

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


Reader = Callable[[MonitoredModel], Columns]


def _file_reader(form: FormData, max_rows: int) -> tuple[Reader, str]:
    """How to read an uploaded CSV or Parquet file into columns, and its source."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ValidationFailed.at(["file"], "send the CSV or Parquet file in form field 'file'")
    file = upload.file
    magic = file.read(4)
    file.seek(0)
    filename, file_type = (upload.filename or "").lower(), upload.content_type or ""
    is_parquet = magic == b"PAR1" or filename.endswith(".parquet") or file_type.endswith("parquet")
    source = "parquet" if magic == b"PAR1" else "csv"

    def read(model: MonitoredModel) -> Columns:
        return reading.table_columns(
            model,
            file,
            is_parquet=is_parquet,
            max_rows=max_rows,
            from_frame=lambda m, frame: reference.columns_from_frame(
                m, frame, from_text=source == "csv"
            ),
        )

    return read, source


def _json_reader(data: bytes, max_rows: int) -> Reader:
    """How to read a JSON body's ``records`` into columns."""

    def whole(model: MonitoredModel, body: Any) -> Columns:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ValidationFailed.at(["records"], 'send {"records": [...]} or a file upload')
        if set(body) != {"records"}:
            raise ValidationFailed.at([sorted(set(body) - {"records"})[0]], "unknown field")
        if len(body["records"]) > max_rows:
            raise reading.too_many_rows(max_rows, len(body["records"]))
        return reference.columns_from_records(model, body["records"])

    def read(model: MonitoredModel) -> Columns:
        return reading.json_columns(
            model,
            data,
            max_rows=max_rows,
            from_records=reference.columns_from_records,
            whole=lambda body: whole(model, body),
        )

    return read


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
    max_rows = settings.max_reference_rows
    if ctype.startswith("multipart/form-data"):
        # the form parser spools the file to disk; it is read a chunk of rows at a time
        read, source = _file_reader(await request.form(max_files=1), max_rows)
    else:
        data = await request.body()  # at most max_body_bytes, as for predictions
        parse.check_content_type(ctype or None)
        read, source = _json_reader(data, max_rows), "json"

    def work() -> dict[str, Any]:
        with db.session() as session:
            model = catalog.active_model(session, name)
            columns = read(model)
            ref = reference.set_reference(
                session,
                model=model,
                columns=columns,
                source=source,
                created_by=key.key_id,
                max_rows=settings.max_reference_rows,
                sample_rows=settings.reference_sample_rows,
            )
            return reference.reference_out(ref, session)

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
    rows = reference.predictions_between(
        session, model, body.start, body.end, limit=settings.max_reference_rows + 1
    )
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
    return reference.reference_out(ref, session)


@router.get("")
def get_reference(name: str, session: SessionDep, _reader: ReaderDep) -> dict[str, Any]:
    """The current baseline's summary: rows, source, per-feature statistics."""
    model = catalog.get_model(session, name)
    return reference.reference_out(reference.current_reference(session, model), session)
