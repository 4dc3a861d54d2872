"""Sign-in, sign-out, and the monitoring pages (models overview, a model's dashboard)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth import authenticate, get_db
from app.catalog import repository as catalog_rows
from app.catalog import service as catalog
from app.drift import repository as drift
from app.drift.report import report_page, report_response
from app.errors import DriftdeskError, Unauthorized
from app.params import EvaluationId
from app.performance import labels as performance_labels
from app.settings import Settings
from app.ui import session as ui_session
from app.ui.dashboard import model_dashboard, queue_panels
from app.ui.deps import CsrfDep, ViewerDep, unit_of_work
from app.ui.render import add_nav, error_page, page, redirect
from storage.base import utcnow

router = APIRouter(prefix="/ui", include_in_schema=False)
HOME = "/ui/queue"
add_nav(("models", "/ui/models", "Dashboards", False))


@router.get("", response_class=RedirectResponse)
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, principal: ViewerDep) -> Response:
    """The start page: the queue for reviewers once it exists, else the dashboards."""
    return redirect(request, HOME)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return page(
        request,
        "login.html",
        {"next": ui_session.safe_next(next), "error": None},
        principal=None,
    )


@router.post("/login", response_class=HTMLResponse, dependencies=[CsrfDep])
def login(
    request: Request,
    key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/ui/",
) -> Response:
    """Check the key exactly as the API does, then keep its id (not the secret) in the session."""
    error = None
    with unit_of_work(request, readonly=True) as session:
        try:
            principal = authenticate(session, f"Bearer {key.strip()}")
        except Unauthorized:
            principal = None
            error = "That key is unknown or revoked."
        if principal is not None and not principal.can(*ui_session.UI_SCOPES):
            error = "That key cannot use the UI: sign in with a review or admin key."
            principal = None
        row = catalog_rows.key(session, principal.key_id) if principal else None
    if row is None:
        return page(
            request,
            "login.html",
            {"next": ui_session.safe_next(next), "error": error},
            principal=None,
            status_code=401,
        )
    ui = ui_session.load(request)
    ui.sign_in(row)
    ui.flash(f"Signed in as {row.name}.")
    return redirect(request, ui_session.safe_next(next))


@router.post("/logout", dependencies=[CsrfDep])
def logout(request: Request) -> Response:
    ui = ui_session.load(request)
    ui.sign_out()
    ui.flash("Signed out.")
    return redirect(request, "/ui/login")


@router.get("/models", response_class=HTMLResponse)
def models_overview(request: Request, principal: ViewerDep) -> Response:
    """Every model, its traffic and its drift state at a glance."""
    with unit_of_work(request, readonly=True) as session:
        models = catalog_rows.models(session)
        latest = drift.latest_evaluations(session)
        incidents = drift.open_incidents(session)
    return page(
        request,
        "models.html",
        {"models": models, "latest": latest, "incidents": incidents},
        principal=principal,
        nav="models",
    )


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(request: Request, name: str, principal: ViewerDep) -> Response:
    """A model's dashboard: drift per feature over time, outputs, volume, queue."""
    performance_labels.sync_all_pending(get_db(request))  # its chart shows the latest labels
    with unit_of_work(request, readonly=True) as session:
        try:
            model = catalog.get_model(session, name)
        except DriftdeskError as exc:
            return error_page(request, principal, "No such model", exc.message, 404)
        board = model_dashboard(session, model=model, now=utcnow())
        queue = queue_panels(session, model=model, now=utcnow())
    return page(
        request,
        "model.html",
        {"board": board, "model": model, "queue": queue},
        principal=principal,
        nav="models",
    )


@router.get("/models/{name}/evaluations/{evaluation_id}/report", response_class=HTMLResponse)
def evaluation_report(
    request: Request, name: str, evaluation_id: EvaluationId, principal: ViewerDep
) -> Response:
    """The evaluation's Evidently report (the API's report, behind the UI's session)."""
    settings: Settings = request.app.state.settings
    with unit_of_work(request, readonly=True) as session:
        try:
            model = catalog.get_model(session, name)
            report = report_page(
                session,
                model=model,
                evaluation_id=evaluation_id,
                sample_rows=settings.report_sample_rows,
            )
        except DriftdeskError as exc:
            return error_page(request, principal, "No report", exc.message, exc.status_code)
    # Evidently's page runs its own inline scripts: only those, sandboxed into an
    # opaque origin, so nothing in it can act with the reviewer's session.
    return report_response(report)
