"""Who may see a UI page, and the CSRF check every state-changing request passes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.auth import Principal, get_db
from app.errors import Refusal
from app.ui import session as ui_session
from app.ui.render import error_page, redirect


class SignInRequired(Exception):
    """No valid session: send the browser to the sign-in page, then back here."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class UiForbidden(Exception):
    """Signed in, but the key lacks the scope (a review key on an admin page)."""


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token (or from another site)."""


def _viewer(request: Request) -> Principal:
    session = ui_session.load(request)
    with get_db(request).session(readonly=True) as db:
        principal = ui_session.principal_of(db, session)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else "/ui/")
    request.state.principal = principal
    return principal


ViewerDep = Annotated[Principal, Depends(_viewer)]


def _admin(principal: ViewerDep) -> Principal:
    if "admin" not in principal.scopes:
        raise UiForbidden()
    return principal


AdminUiDep = Annotated[Principal, Depends(_admin)]


async def _csrf(request: Request) -> None:
    submitted: str | None = request.headers.get("x-csrf-token")
    if submitted is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # parsed once; FastAPI's Form fields reuse it
            value = form.get("csrf")
            submitted = value if isinstance(value, str) else None
    if not ui_session.csrf_ok(request, submitted):
        raise CsrfRefused()


CsrfDep = Depends(_csrf)


@contextmanager
def unit_of_work(request: Request, *, readonly: bool = False) -> Iterator[Session]:
    """A database session for one UI action: commits at the end, rolls back on error."""
    with get_db(request).session(readonly=readonly) as session:
        yield session


def fail(request: Request, exc: Refusal, back: str) -> Response:
    """A refused action: say why (the domain's own message) and go back."""
    ui_session.load(request).flash(exc.message, "error")
    return redirect(request, back)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return redirect(request, f"/ui/login?next={quote(exc.next_url, safe='/')}")

    @app.exception_handler(UiForbidden)
    async def _forbidden(request: Request, exc: UiForbidden) -> Response:
        return error_page(
            request,
            getattr(request.state, "principal", None),
            "Not allowed",
            "This page needs an admin key. Sign in with one, or ask an admin.",
            403,
        )

    @app.exception_handler(CsrfRefused)
    async def _csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return error_page(
            request,
            getattr(request.state, "principal", None),
            "Form expired",
            "This form was refused: it did not carry this session's security "
            "token (it may be from an old tab, or from another site). Reload the page "
            "and try again.",
            403,
        )
