"""Domain errors that carry their HTTP status, and the one error shape of API.md.

Every error leaves the service as
``{"error": {"code": "...", "message": "...", "details": [...]}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.responses import JSON

log = logging.getLogger("driftdesk.errors")

Loc = Sequence[str | int]


class DriftdeskError(Exception):
    """Base of every error a client should see, with its status and stable code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class ValidationFailed(DriftdeskError):
    status_code = 422
    code = "validation_error"

    @classmethod
    def at(cls, loc: Loc, message: str) -> ValidationFailed:
        """One error at one field, ``loc`` as in API.md (``["predictions", 3, "features", "age"]``)."""
        return cls(message, details=[{"loc": list(loc), "msg": message}])


class NotFound(DriftdeskError):
    status_code = 404
    code = "not_found"


class Conflict(DriftdeskError):
    status_code = 409
    code = "conflict"


class Unauthorized(DriftdeskError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DriftdeskError):
    status_code = 403
    code = "forbidden"


class PayloadTooLarge(DriftdeskError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(DriftdeskError):
    status_code = 415
    code = "unsupported_media_type"


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def _pydantic_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    details = []
    for err in errors:
        loc = [part for part in err.get("loc", ()) if part != "body"]
        details.append({"loc": loc, "msg": err.get("msg", ""), "type": err.get("type", "")})
    return details


def validation_error_from_pydantic(errors: Sequence[Any], prefix: Loc = ()) -> ValidationFailed:
    details = _pydantic_details(errors)
    for d in details:
        d["loc"] = [*prefix, *d["loc"]]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return ValidationFailed(f"{where}: {first['msg']}", details=details)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, ours and the framework's, in the contract's shape."""

    @app.exception_handler(DriftdeskError)
    async def _domain(_request: Request, exc: DriftdeskError) -> JSON:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSON(
            error_body(exc.code, exc.message, exc.details),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSON:
        err = validation_error_from_pydantic(exc.errors())
        return JSON(error_body(err.code, err.message, err.details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSON:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route: check the path against /docs"
        elif exc.status_code == 405:
            message = "method not allowed on this route: check /docs for the allowed verbs"
        return JSON(error_body(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSON:
        log.exception("unhandled error", extra={"path": request.url.path, "method": request.method})
        return JSON(
            error_body(
                "internal_error",
                "the server failed to handle this request; nothing was stored. "
                "Retry, and report it with the time if it persists.",
            ),
            status_code=500,
        )
