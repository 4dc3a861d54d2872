"""Jinja2 rendering for the UI: one environment, page and redirect helpers, filters."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.auth import Principal
from app.ui import session as ui_session
from storage.base import utcnow

HERE = Path(__file__).parent
STATIC = HERE / "static"

# Every asset is served by this process: no CDN, no inline script or style.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def age(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """A short, human duration since ``value`` ("3m", "2h 5m", "4d")."""
    if value is None:
        return "–"
    return duration((now or utcnow()) - value)


def duration(delta: dt.timedelta | float | None) -> str:
    if delta is None:
        return "–"
    seconds = delta.total_seconds() if isinstance(delta, dt.timedelta) else float(delta)
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m"
    if s < 86_400:
        h, m = divmod(s // 60, 60)
        return f"{sign}{h}h {m}m" if m else f"{sign}{h}h"
    return f"{sign}{s // 86_400}d {(s % 86_400) // 3600}h"


def number(value: Any, digits: int = 3) -> str:
    """Numbers for people: integers with thin separators, floats to ``digits`` significant."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{max(digits - 1, 0)}f}"
    return str(value)


def when(value: dt.datetime | None) -> str:
    return "–" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# (key, href, label, admin only), in menu order; each page module adds its own
NAV: list[tuple[str, str, str, bool]] = []


def add_nav(*items: tuple[str, str, str, bool]) -> None:
    for item in items:
        if item not in NAV:
            NAV.append(item)


NAV_ORDER = (
    "queue",
    "mine",
    "models",
    "workforce",
    "alerts",
    "admin-models",
    "admin-keys",
    "admin-channels",
)


def nav_items(is_admin: bool) -> list[tuple[str, str, str]]:
    items = sorted(NAV, key=lambda i: NAV_ORDER.index(i[0]) if i[0] in NAV_ORDER else 99)
    return [(k, h, label) for k, h, label, admin in items if is_admin or not admin]


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["age"] = age
    env.filters["duration"] = duration
    env.filters["number"] = number
    env.filters["when"] = when
    env.filters["iso"] = iso
    env.globals["nav_items"] = nav_items
    return env


ENV = _environment()


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    principal: Principal | None,
    status_code: int = 200,
    nav: str = "",
) -> Response:
    """Render a full page with the layout's context (principal, CSRF token, flashes)."""
    session = ui_session.load(request)
    html = ENV.get_template(template).render(
        principal=principal,
        is_admin=principal is not None and "admin" in principal.scopes,
        csrf=session.csrf,
        flashes=session.pop_flashes(),
        nav=nav,
        path=request.url.path,
        now=utcnow(),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    return ui_session.save(request, response)


def error_page(
    request: Request, principal: Principal | None, title: str, message: str, status_code: int
) -> Response:
    """The one error page: a title, what happened and what to do, with its status."""
    return page(
        request,
        "error.html",
        {"title": title, "message": message},
        principal=principal,
        status_code=status_code,
    )


def redirect(request: Request, url: str) -> Response:
    """303 See Other: the POST-redirect-GET after every form."""
    return ui_session.save(request, RedirectResponse(url, status_code=303))
