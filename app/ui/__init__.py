"""The reviewers' web UI at /ui/: server-rendered pages, a little JavaScript, inline SVG charts."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from app.ui import admin, alerts, pages, queue, workforce
from app.ui.deps import install_handlers
from app.ui.render import STATIC


def install(app: FastAPI) -> None:
    """Add the UI's routes, its static files and its error pages to ``app``."""
    for module in (pages, queue, admin, alerts, workforce):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    install_handlers(app)
