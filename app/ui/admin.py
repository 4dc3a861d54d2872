"""Admin pages: models and their settings, API keys.

Every write goes through the same functions as the API (``app.catalog.service`` for
models, the ``/v1/keys`` handlers for keys), with the request body validated by
the API's own schemas, so the UI cannot accept what the API would refuse.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.catalog import keys as keys_api
from app.catalog import repository as catalog_rows
from app.catalog import service as catalog
from app.errors import DriftdeskError, validation_error_from_pydantic
from app.schemas import KeyCreate, ModelCreate, ModelPatch
from app.ui import session as ui_session
from app.ui.deps import AdminUiDep, CsrfDep, fail, unit_of_work
from app.ui.render import add_nav, error_page, page, redirect
from storage.options import ModelOptions
from storage.tables import ApiKey, MonitoredModel

router = APIRouter(prefix="/ui/admin", include_in_schema=False)
add_nav(
    ("admin-models", "/ui/admin/models", "Models", True),
    ("admin-keys", "/ui/admin/keys", "Keys", True),
)

MODEL_EXAMPLE = json.dumps(
    {
        "name": "churn-classifier",
        "task": "classification",
        "features": [
            {"name": "age", "type": "numerical"},
            {"name": "plan", "type": "categorical"},
        ],
        "labels": ["stay", "churn"],
        "window": {"kind": "count", "size": 5000, "step": 1000},
        "confidence_threshold": 0.6,
    },
    indent=2,
)


def form_errors(exc: ValidationError, data: Any) -> list[str]:
    err = validation_error_from_pydantic(exc.errors(), data=data)
    return [f"{'.'.join(str(p) for p in d['loc']) or 'body'}: {d['msg']}" for d in err.details] or [
        err.message
    ]


def option_fields() -> list[dict[str, Any]]:
    """The model options as form fields, from the API schema itself."""
    fields = []
    for name, info in ModelOptions.model_fields.items():
        annotation = str(info.annotation)
        fields.append(
            {
                "name": name,
                "label": name.replace("_", " "),
                "help": info.description or "",
                "optional": "None" in annotation,
                "integer": "int" in annotation,
            }
        )
    return fields


# --------------------------------------------------------------------------- models
@router.get("/models", response_class=HTMLResponse)
def models_admin(request: Request, principal: AdminUiDep) -> Response:
    with unit_of_work(request, readonly=True) as session:
        models = catalog_rows.models(session)
    return page(
        request,
        "admin_models.html",
        {"models": models, "spec": MODEL_EXAMPLE, "errors": []},
        principal=principal,
        nav="admin-models",
    )


@router.post("/models", response_class=HTMLResponse, dependencies=[CsrfDep])
def create_model(
    request: Request, principal: AdminUiDep, spec: Annotated[str, Form()] = ""
) -> Response:
    """Register a model from its JSON description (the body of POST /v1/models)."""
    errors: list[str] = []
    try:
        data = json.loads(spec)
        body = ModelCreate.model_validate(data)
    except json.JSONDecodeError as exc:
        errors = [f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
    except ValidationError as exc:
        errors = form_errors(exc, data)
    if not errors:
        try:
            with unit_of_work(request) as session:
                catalog.create_model(session, body=body)
        except DriftdeskError as exc:
            errors = [exc.message]
    if errors:
        with unit_of_work(request, readonly=True) as session:
            models = catalog_rows.models(session)
        return page(
            request,
            "admin_models.html",
            {"models": models, "spec": spec, "errors": errors},
            principal=principal,
            nav="admin-models",
            status_code=422,
        )
    ui_session.load(request).flash(f"Model {body.name} registered. Post its reference next.")
    return redirect(request, f"/ui/admin/models/{body.name}")


def _settings_form(model: MonitoredModel) -> dict[str, Any]:
    window = model.window
    return {
        "confidence_threshold": ""
        if model.confidence_threshold is None
        else str(model.confidence_threshold),
        "window_kind": window.get("kind", "count"),
        "window_size": str(window.get("size", "")),
        "window_step": str(window.get("step", "")),
        "alpha": str(model.drift.get("alpha", 0.01)),
        "correction": model.drift.get("correction", "bh"),
        "min_effect": json.dumps(model.drift.get("min_effect", "auto")).strip('"'),
        "strict": model.strict,
        **{
            f"opt_{k}": "" if v is None else str(v)
            for k, v in ModelOptions(**model.options).model_dump().items()
        },
    }


def _model_page(
    request: Request,
    principal: Any,
    name: str,
    *,
    form: dict[str, Any] | None = None,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    with unit_of_work(request, readonly=True) as session:
        try:
            model = catalog.get_model(session, name)
        except DriftdeskError as exc:
            return error_page(request, principal, "No such model", exc.message, 404)
        out = catalog.model_out(session, model)
    return page(
        request,
        "admin_model.html",
        {
            "model": out,
            "form": form or _settings_form(model),
            "options": option_fields(),
            "errors": errors or [],
        },
        principal=principal,
        nav="admin-models",
        status_code=status_code,
    )


@router.get("/models/{name}", response_class=HTMLResponse)
def model_admin(request: Request, name: str, principal: AdminUiDep) -> Response:
    return _model_page(request, principal, name)


def _number(text: str) -> int | float | str:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


@router.post("/models/{name}", response_class=HTMLResponse, dependencies=[CsrfDep])
async def save_model(request: Request, name: str, principal: AdminUiDep) -> Response:
    """Change a model's settings: the form becomes a PATCH /v1/models/{name} body."""
    raw = await request.form()
    form: dict[str, Any] = {k: v for k, v in raw.items() if isinstance(v, str)}
    form["strict"] = raw.get("strict") == "on"
    min_effect = form.get("min_effect", "auto").strip() or "auto"
    patch: dict[str, Any] = {
        "confidence_threshold": _number(form["confidence_threshold"].strip())
        if form.get("confidence_threshold", "").strip()
        else None,
        "window": {
            "kind": form.get("window_kind", ""),
            "size": _number(form.get("window_size", "").strip()),
            "step": _number(form.get("window_step", "").strip()),
        },
        "drift": {
            "alpha": _number(form.get("alpha", "").strip()),
            "correction": form.get("correction", "bh"),
            "min_effect": "auto" if min_effect == "auto" else _number(min_effect),
        },
        "strict": form["strict"],
        "options": {},
    }
    with unit_of_work(request, readonly=True) as session:
        try:
            current = catalog.get_model(session, name)
        except DriftdeskError as exc:
            return fail(request, exc, "/ui/admin/models")
        # keep what the form does not edit (per-feature detectors and effects)
        for key in ("detectors", "min_rows"):
            if key in current.drift:
                patch["drift"][key] = current.drift[key]
        if isinstance(current.drift.get("min_effect"), dict):
            patch["drift"]["min_effect"] = current.drift["min_effect"]
    for field in option_fields():
        value = form.get(f"opt_{field['name']}", "").strip()
        patch["options"][field["name"]] = None if value == "" else _number(value)
    try:
        body = ModelPatch.model_validate(patch)
    except ValidationError as exc:
        return _model_page(
            request, principal, name, form=form, errors=form_errors(exc, patch), status_code=422
        )
    try:
        with unit_of_work(request) as session:
            catalog.patch_model(session, model=catalog.get_model(session, name), body=body)
    except DriftdeskError as exc:
        return _model_page(
            request, principal, name, form=form, errors=[exc.message], status_code=exc.status_code
        )
    ui_session.load(request).flash(f"Settings of {name} saved.")
    return redirect(request, f"/ui/admin/models/{name}")


@router.post("/models/{name}/status", dependencies=[CsrfDep])
def set_model_status(
    request: Request,
    name: str,
    principal: AdminUiDep,
    status: Annotated[str, Form()],
) -> Response:
    """Archive (stop accepting traffic, keep every row) or restore a model."""
    try:
        body = ModelPatch.model_validate({"status": status})
        with unit_of_work(request) as session:
            catalog.patch_model(session, model=catalog.get_model(session, name), body=body)
    except ValidationError:
        ui_session.load(request).flash("status must be active or archived", "error")
        return redirect(request, f"/ui/admin/models/{name}")
    except DriftdeskError as exc:
        return fail(request, exc, "/ui/admin/models")
    ui_session.load(request).flash(
        f"Model {name} {'archived' if status == 'archived' else 'restored'}."
    )
    return redirect(request, f"/ui/admin/models/{name}")


# --------------------------------------------------------------------------- keys
def _keys(request: Request) -> list[ApiKey]:
    with unit_of_work(request, readonly=True) as session:
        return catalog_rows.keys_by_age(session)


@router.get("/keys", response_class=HTMLResponse)
def keys_admin(request: Request, principal: AdminUiDep) -> Response:
    return page(
        request,
        "admin_keys.html",
        {"keys": _keys(request), "created": None, "errors": []},
        principal=principal,
        nav="admin-keys",
    )


@router.post("/keys", response_class=HTMLResponse, dependencies=[CsrfDep])
async def create_key(request: Request, principal: AdminUiDep) -> Response:
    """Create a key; the response shows its secret, which is never shown again."""
    raw = await request.form()
    data = {
        "name": str(raw.get("name", "")).strip(),
        "scopes": [s for s in raw.getlist("scopes") if isinstance(s, str)],
    }
    try:
        body = KeyCreate.model_validate(data)
    except ValidationError as exc:
        return page(
            request,
            "admin_keys.html",
            {"keys": _keys(request), "created": None, "errors": form_errors(exc, data)},
            principal=principal,
            nav="admin-keys",
            status_code=422,
        )
    with unit_of_work(request) as session:
        created = keys_api.create_key(body, session, principal)
    # Rendered, not redirected: the secret must not travel through the session cookie.
    return page(
        request,
        "admin_keys.html",
        {"keys": _keys(request), "created": created, "errors": []},
        principal=principal,
        nav="admin-keys",
        status_code=201,
    )


@router.post("/keys/{key_id}/revoke", dependencies=[CsrfDep])
def revoke_key(request: Request, key_id: str, principal: AdminUiDep) -> Response:
    try:
        with unit_of_work(request) as session:
            keys_api.revoke_key(key_id, session, principal)
    except DriftdeskError as exc:
        return fail(request, exc, "/ui/admin/keys")
    note = " You revoked your own key: you are signed out." if key_id == principal.key_id else ""
    ui_session.load(request).flash(f"Key {key_id} revoked.{note}")
    return redirect(request, "/ui/admin/keys")
