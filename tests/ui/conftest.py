"""UI fixtures: a real uvicorn server per test module and backend, and one headless Chromium.

The server runs ``create_app`` on a free loopback port in a thread, against its
own copy of the migrated template database (SQLite file or PostgreSQL
``CREATE DATABASE ... TEMPLATE``), seeded once per module through the API.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.db import Database, make_engine
from app.main import create_app
from app.settings import Settings
from tests.conftest import ADMIN_SECRET, BACKENDS, fresh_database, make_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Live:
    """A running server: its URL, settings, database and an admin API client."""

    url: str
    settings: Settings
    db: Database
    api: httpx.Client

    def key(self, name: str, *scopes: str) -> str:
        r = self.api.post("/v1/keys", json={"name": name, "scopes": list(scopes)})
        assert r.status_code == 201, r.text
        secret: str = r.json()["secret"]
        return secret


@pytest.fixture(scope="module", params=BACKENDS)
def live_db_url(
    request: pytest.FixtureRequest,
    _templates: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A fresh migrated database for one module (the per-test ``db_url``, module-scoped)."""
    folder = tmp_path_factory.mktemp("ui-db")
    with fresh_database(request.param, _templates, folder, prefix="dd_ui") as url:
        yield url


def serve(settings: Settings, db: Database) -> Iterator[str]:
    """Run the app under uvicorn on a free loopback port until the generator is closed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, database=db), log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the UI test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture(scope="module")
def live(live_db_url: str) -> Iterator[Live]:
    settings = make_settings(live_db_url, default_lease_seconds=120)
    db = Database(make_engine(settings.database_url, sqlite_synchronous="NORMAL"))
    gen = serve(settings, db)
    url = next(gen)
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {ADMIN_SECRET}"}, timeout=60
    ) as api:
        yield Live(url=url, settings=settings, db=db, api=api)
    gen.close()
    db.dispose()


# Package-scoped, not session-scoped: Playwright's sync API keeps an event loop
# marked running in the main thread until it stops, so later asyncio.run() calls
# (the async client's tests, whatever order pytest is given) would fail.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser context (cookies, storage) at desktop size."""
    ctx = browser.new_context(viewport=DESKTOP)
    yield ctx
    ctx.close()


def sign_in(page: Any, url: str, secret: str, *, next_path: str = "/ui/") -> None:
    """Sign in through the form, as a person would."""
    page.goto(url + next_path)
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert "/ui/login" not in page.url, page.content()[:2000]


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)
