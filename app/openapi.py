"""The API reference: /docs and /redoc served from the package, and the schema they read.

Swagger UI and ReDoc come from the ``fastapi-offline`` package's static files
(MIT-licensed bundles of both), so the docs work on a machine without internet.
The schema FastAPI generates is completed here, in one place, so every route
gets the same treatment, new ones included:

- a Bearer security scheme, so Swagger UI's "Authorize" takes an API key;
- every error an operation can answer (401, 403, 404, 409, 413, 415, 422) in
  the contract's shape ``{"error": {"code", "message", "details"}}``, never
  FastAPI's ``{"detail": ...}``;
- an example for every operation: its request body's, else its answer's.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs-assets"
SECURITY_SCHEME = "bearer"

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "description": "Every error: a stable machine-readable code, a message saying what to "
    "do, and details naming the offending fields.",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "examples": ["validation_error"]},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "loc": {
                                "type": "array",
                                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                            },
                            "msg": {"type": "string"},
                            "type": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}

# status: (code, when it is answered, an example message)
ERRORS: dict[int, tuple[str, str, str]] = {
    401: (
        "unauthorized",
        "No API key, a malformed `Authorization` header, or an unknown or revoked key.",
        "missing API key: send 'Authorization: Bearer <key>' (create one with 'driftdesk keys create')",
    ),
    403: (
        "forbidden",
        "The key lacks the scope this route needs.",
        "this key lacks the scope for this route: needs one of review (or admin)",
    ),
    404: (
        "not_found",
        "No such model, ticket, key, alert, channel or silence.",
        "no model named 'churn'",
    ),
    409: (
        "conflict",
        "The request conflicts with the current state: a name already taken, a ticket "
        "you do not hold or that is finished, a model without a reference.",
        "a model named 'churn' already exists",
    ),
    413: (
        "payload_too_large",
        "The body or the batch is over its configured limit: send smaller batches.",
        "request body of 40000000 bytes is over the limit of 33554432 bytes: send smaller batches",
    ),
    415: (
        "unsupported_media_type",
        "The body is neither JSON nor, where a file is accepted, a multipart upload.",
        "send application/json, not 'text/plain'",
    ),
    422: (
        "validation_error",
        "The input is invalid; `details` names each offending field.",
        "predictions.0.confidence: Input should be less than or equal to 1",
    ),
    503: (
        "not_ready",
        "The database cannot be reached now (or is not migrated): retry later.",
        "database unreachable: retry later",
    ),
}

_WRITES = {"post", "put", "patch", "delete"}


def _error_response(status: int, description: str | None = None) -> dict[str, Any]:
    code, when, message = ERRORS.get(status, ("error", "An error.", "what went wrong"))
    loc = ["predictions", 0, "confidence"] if status == 422 else None
    details = [{"loc": loc, "msg": message.split(": ", 1)[1]}] if loc else []
    return {
        "description": description or when,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Error"},
                "example": {"error": {"code": code, "message": message, "details": details}},
            }
        },
    }


def _errors_of(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The errors an API operation can answer, from what it takes."""
    # 404: a named thing that does not exist (a path id, ?model=, a body's "model")
    statuses = [401, 403, 404]
    params = operation.get("parameters") or []
    if method in _WRITES:
        statuses.append(409)
    if "requestBody" in operation:
        statuses += [413, 415]
    if params or "requestBody" in operation or method in _WRITES:
        statuses.append(422)
    return statuses


# property names whose generated example would say nothing ("task": "string"): the
# values of the README's loop instead; used only where the schema has no example
HINTS: dict[str, Any] = {
    "name": "churn",
    "model": "churn",
    "task": "classification",
    "features": [{"name": "age", "type": "numerical"}, {"name": "plan", "type": "categorical"}],
    "labels": ["stay", "churn"],
    "window": {"kind": "count", "size": 5000, "step": 1000},
    "label": "stay",
    "prediction": "churn",
    "confidence": 0.54,
    "scopes": ["review"],
    "secret": "dd_2eae3bced21b_Zk3…",
    "lease_token": "8c1f3e0a-5b7d-4c1e-9f0a-2d6b7e9c4a11",
    "note": "checked against the customer record",
    "next_cursor": None,
    "model_version": "2026-11-01",
}
# operations whose answer has no schema to build one from
OPERATION_EXAMPLES: dict[tuple[str, str], Any] = {
    ("/readyz", "get"): {"status": "ready", "revision": ["0004"]},
}


_JSON_TYPES = {list: "array", dict: "object", str: "string", float: "number", int: "integer"}


def _fits(value: Any, schema: dict[str, Any]) -> bool:
    """Whether a hint has the schema's type (``features`` is a list in a model, a dict in a record)."""
    kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
    return value is None or _JSON_TYPES.get(type(value)) in kinds


def _example_of(
    schema: dict[str, Any], components: dict[str, Any], depth: int = 0, name: str = ""
) -> Any:
    """A plausible value of ``schema``: its own example or default, else one built from it."""
    if "$ref" in schema:
        ref = schema["$ref"].rsplit("/", 1)[-1]
        return _example_of(components.get(ref, {}), components, depth + 1, name)
    for key in ("example", "default", "const"):
        if key in schema and schema[key] is not None:
            return copy.deepcopy(schema[key])
    if schema.get("examples"):
        return copy.deepcopy(schema["examples"][0])
    if "enum" in schema:
        return schema["enum"][0]
    if name in HINTS and _fits(HINTS[name], schema):
        return copy.deepcopy(HINTS[name])
    for key in ("anyOf", "oneOf", "allOf"):
        options = [s for s in schema.get(key, []) if s.get("type") != "null"]
        if options:
            return _example_of(options[0], components, depth + 1, name)
    if depth > 8:
        return None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            prop: _example_of(sub, components, depth + 1, prop)
            for prop, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        return [_example_of(schema.get("items", {}), components, depth + 1)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return (low + high) / 2
        return low if low is not None else 0.5
    if kind == "boolean":
        return False
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return "2026-11-24T10:00:00Z"
        if fmt == "date":
            return "2026-11-24"
        return name or "text"
    return None


# examples of the answers that are not JSON, by media type
TEXT_EXAMPLES = {
    "text/html": "<!doctype html><html><head><title>Data drift</title></head>…</html>",
    "text/csv": "id,timestamp,prediction,label,labelled_by,age,plan\n"
    "req-8f3a,2026-11-24T10:00:00Z,churn,stay,ana (3f2c1d),41,pro\n",
    "application/x-ndjson": '{"id": "req-8f3a", "prediction": "churn", "label": "stay"}\n',
    "text/plain": "# TYPE driftdesk_requests_total counter\n"
    'driftdesk_requests_total{route="/v1/tickets/claim",status="200"} 1042\n',
}
# path parameters by name: a Try-it-out value that reads like the README's loop
PARAMETER_EXAMPLES: dict[str, Any] = {
    "name": "churn",
    "key_id": "2eae3bced21b",
}


def _has_example(media: dict[str, Any]) -> bool:
    return bool(media.get("example") is not None or media.get("examples"))


def _add_example(operation: dict[str, Any], components: dict[str, Any]) -> None:
    """Examples for the path parameters, the request body and the successful answer."""
    for param in operation.get("parameters", []):
        if param.get("in") == "path" and "example" not in param:
            kind = param.get("schema", {}).get("type")
            param["example"] = PARAMETER_EXAMPLES.get(
                param["name"], 1 if kind == "integer" else "churn"
            )
    body = operation.get("requestBody", {}).get("content", {})
    targets = [m for ctype, m in body.items() if "json" in ctype]
    for status, response in sorted(operation.get("responses", {}).items()):
        if status.startswith("2"):
            targets += [m for ct, m in response.get("content", {}).items() if "json" in ct]
            for ctype, media in response.get("content", {}).items():
                text = TEXT_EXAMPLES.get(ctype.split(";")[0])
                if text is not None and not _has_example(media):
                    media["example"] = text
            break
    for media in targets:
        if not _has_example(media):
            example = _example_of(media.get("schema", {}), components)
            if example is not None:
                media["example"] = example


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """The generated schema with security, the errors in the contract's shape, examples."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`dd_...`): `driftdesk keys create`, or the admin key "
            "the first `driftdesk serve` printed.",
        }
    }
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "head", *_WRITES}:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if path.startswith("/v1/"):
                operation["security"] = [{SECURITY_SCHEME: []}]
                for code in _errors_of(path, method, operation):
                    declared = responses.get(str(code), {})
                    responses[str(code)] = _error_response(
                        code,
                        None if code == 422 else declared.get("description"),
                    )
            else:
                operation["security"] = []
            for status, declared in list(responses.items()):
                if status[:1] in "45" and "$ref" not in str(declared.get("content")):
                    responses[status] = _error_response(int(status), declared.get("description"))
            _add_example(operation, schemas)
            special = OPERATION_EXAMPLES.get((path, method))
            if special is not None:
                ok = responses.get("200", {}).get("content", {}).get("application/json")
                if ok is not None:
                    ok["example"] = special
    # FastAPI's {"detail": [...]} shapes are never sent: drop them once nothing refers to them
    text = repr(schema["paths"])
    for name in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{name}'" not in text:
            schemas.pop(name, None)
    return schema


# The pages use only this server: a browser asks nothing of any other host (ReDoc's
# footer would fetch its logo from a CDN; Swagger UI a validator badge).
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'"
)


def _offline(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc from the package's assets, over the completed schema."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _offline(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} — API",
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
                # no badge fetched from the public validator; the key survives a reload
                swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _offline(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} — API",
                redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
