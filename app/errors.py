"""Domain errors that carry their HTTP status, and the one error shape of API.md.

Every error leaves the service as
``{"error": {"code": "...", "message": "...", "details": [...]}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.responses import JSON
from exceptions_queue.errors import QueueError

log = logging.getLogger("driftdesk.errors")

Loc = Sequence[str | int]


class DriftdeskError(Exception):
    """Base of every error a client should see, with its status and stable code."""

    status_code = 400
    code = "bad_request"
    headers: ClassVar[Mapping[str, str]] = {}  # sent with the error (Retry-After, Connection)

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


# Everything a client may be told, in the error shape: ours, and the queue's own errors
# (exceptions_queue/errors.py), which carry the same status_code, code, message, details.
Refusal = DriftdeskError | QueueError
REFUSALS = (DriftdeskError, QueueError)


class RequestTimeout(DriftdeskError):
    """The client stopped sending its request: answered, then the connection is closed."""

    status_code = 408
    code = "request_timeout"
    headers: ClassVar[Mapping[str, str]] = {"Connection": "close"}


class ServiceUnavailable(DriftdeskError):
    """The database cannot be reached (or is saturated) right now: retry later."""

    status_code = 503
    code = "service_unavailable"
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": "5"}


DATABASE_UNAVAILABLE = (
    "the database is unavailable right now; nothing was stored. Retry after the Retry-After seconds"
)


def is_database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot serve now, rather than that a statement is wrong.

    Operational errors (connection refused or lost, server shutting down, a lock
    or statement timeout), a connection invalidated mid-use, and the pool's own
    timeout. Integrity and programming errors are bugs or conflicts, not outages.
    """
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


_NO_INPUT = object()


def _field_loc(loc: Sequence[str | int], data: Any, *, missing: bool) -> list[str | int]:
    """``loc`` without pydantic's union-member tags, found by walking the input.

    Pydantic names the branch of a union in the location (``["features", "age",
    "str"]``, ``["drift", "min_effect", "dict[str,float]", "x"]``); a client wants
    the field. A part that is not a key or index of the input is such a tag, unless
    it is the last part of a "missing" error (a field the input lacks).
    """
    if data is _NO_INPUT:
        return list(loc)
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        in_input = (isinstance(node, dict) and part in node) or (
            isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node)
        )
        if in_input:
            node = node[part]
        elif not (missing and i == len(loc) - 1):
            continue
        out.append(part)
    return out


def _pydantic_details(errors: Sequence[Any], data: Any = _NO_INPUT) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = []
    by_loc: dict[tuple[str | int, ...], dict[str, Any]] = {}
    for err in errors:
        loc = list(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            loc = ["body"]  # the body as a whole (pydantic adds the offset of the error)
        elif loc[:1] == ["body"]:
            loc = _field_loc(loc[1:], data, missing=err.get("type") == "missing")
        elif data is not _NO_INPUT and loc[:1] not in (["query"], ["path"], ["header"], ["cookie"]):
            loc = _field_loc(loc, data, missing=err.get("type") == "missing")
        same = by_loc.get(tuple(loc))
        if same is not None:  # the other branches of one union: one detail, every reason
            same["msg"] += f"; or {err.get('msg', '')}"
            continue
        detail = {"loc": loc, "msg": err.get("msg", ""), "type": err.get("type", "")}
        by_loc[tuple(loc)] = detail
        details.append(detail)
    return details


def validation_error_from_pydantic(
    errors: Sequence[Any], prefix: Loc = (), *, data: Any = _NO_INPUT
) -> ValidationFailed:
    """A 422 from pydantic's errors; ``data`` (the validated input) locates union errors."""
    details = _pydantic_details(errors, data)
    for d in details:
        d["loc"] = [*prefix, *d["loc"]]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return ValidationFailed(f"{where}: {first['msg']}", details=details)


_STATUS_CODES = {
    400: "bad_request",
    408: "request_timeout",
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


def _render(exc: Refusal) -> JSON:
    headers = dict(getattr(exc, "headers", {}))
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSON(
        error_body(exc.code, exc.message, exc.details), status_code=exc.status_code, headers=headers
    )


async def _domain(_request: Request, exc: DriftdeskError) -> JSON:
    return _render(exc)


async def _queue(_request: Request, exc: QueueError) -> JSON:
    return _render(exc)


async def _validation(request: Request, exc: RequestValidationError) -> JSON:
    # A route that checks its key together with its work (app.auth.UnitOfWork)
    # has not checked it yet: a caller without a valid key gets its 401/403,
    # never a 422 that would describe the route to it.
    check = getattr(request.state, "check_key", None)
    if check is not None:
        try:
            await check()
        except DriftdeskError as refused:
            return _render(refused)
    err = validation_error_from_pydantic(exc.errors(), data=exc.body)
    return _render(err)


async def _http(_request: Request, exc: StarletteHTTPException) -> JSON:
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = str(exc.detail)
    if exc.status_code == 400:
        # the framework's answer to a body it cannot parse (JSON that is not UTF-8, a
        # broken multipart upload): a 422 like any other invalid input, as the contract says
        if message == "There was an error parsing the body":
            message = "the body is not valid JSON (UTF-8)"
        return _render(ValidationFailed.at(["body"], f"{message}: fix the request body"))
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route: check the path against /docs"
    elif exc.status_code == 405:
        message = "method not allowed on this route: check /docs for the allowed verbs"
    return JSON(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


async def _database(request: Request, exc: sa_exc.SQLAlchemyError) -> JSON:
    if not is_database_outage(exc):
        return await _unexpected(request, exc)
    # The driver's message names the host, port and user: logs only.
    log.warning(
        "database unavailable",
        extra={
            "path": request.url.path,
            "method": request.method,
            "error": f"{exc.__class__.__name__}: {exc}".splitlines()[0],
        },
    )
    return _render(ServiceUnavailable(DATABASE_UNAVAILABLE))


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


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, ours and the framework's, in the contract's shape."""
    app.exception_handler(DriftdeskError)(_domain)
    app.exception_handler(QueueError)(_queue)
    app.exception_handler(RequestValidationError)(_validation)
    app.exception_handler(StarletteHTTPException)(_http)
    app.exception_handler(sa_exc.SQLAlchemyError)(_database)
    app.exception_handler(Exception)(_unexpected)
