"""JSON responses rendered with orjson (numpy values and datetimes included)."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response


class JSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(
            content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z
        )


def model_json(model: BaseModel) -> Response:
    """``model`` rendered to JSON by pydantic, as it is: for hot routes that build
    their response model themselves (FastAPI would validate it a second time)."""
    return Response(model.model_dump_json(by_alias=True), media_type="application/json")
