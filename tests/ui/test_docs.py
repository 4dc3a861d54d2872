"""/docs and /redoc work offline, "Authorize" takes an API key, and the schema documents
every error in the contract's shape, with an example for every operation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app.db import Database, make_engine
from tests.conftest import ADMIN_SECRET, fresh_database, make_settings
from tests.ui.conftest import serve


@pytest.fixture(scope="module")
def docs_url(_templates: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("docs")
    with fresh_database("sqlite", _templates, folder) as url:
        settings = make_settings(url)
        db = Database(make_engine(settings.database_url, sqlite_synchronous="NORMAL"))
        gen = serve(settings, db)
        yield next(gen)
        gen.close()
        db.dispose()


@pytest.fixture(scope="module")
def schema(docs_url: str) -> dict[str, Any]:
    r = httpx.get(docs_url + "/openapi.json")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, op in item.items():
            yield path, method, op


def test_every_api_operation_documents_its_errors_in_the_contract_shape(
    schema: dict[str, Any],
) -> None:
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, method, op in operations(schema):
        if not path.startswith("/v1/"):
            assert op["security"] == [], path
            continue
        assert op["security"] == [{"bearer": []}], (method, path)
        expected = {"401", "403", "422"} if op.get("parameters") or method != "get" else set()
        expected |= {"401", "403", "404"}
        if method in ("post", "patch", "delete"):
            expected.add("409")
        if "requestBody" in op:
            expected |= {"413", "415"}
        assert expected <= set(op["responses"]), (method, path, sorted(op["responses"]))
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                media = response["content"]["application/json"]
                assert media["schema"] == {"$ref": "#/components/schemas/Error"}, (path, status)
                example = media["example"]["error"]
                assert set(example) == {"code", "message", "details"}, (path, status)
                assert "detail" not in media["example"]


def test_every_operation_has_an_example(schema: dict[str, Any]) -> None:
    def has(media: dict[str, Any]) -> bool:
        return media.get("example") is not None or bool(media.get("examples"))

    missing = []
    for path, method, op in operations(schema):
        body = op.get("requestBody", {}).get("content", {}).values()
        answers = [
            media
            for status, response in op["responses"].items()
            if status.startswith("2")
            for media in response.get("content", {}).values()
        ]
        params = [p for p in op.get("parameters", []) if p.get("in") == "path"]
        if not (any(has(m) for m in [*body, *answers]) or (params and all(has(p) for p in params))):
            missing.append(f"{method.upper()} {path}")
    assert missing == []


def test_docs_and_redoc_load_with_no_request_off_this_machine(
    browser: Any, docs_url: str, tmp_path: Path
) -> None:
    page = browser.new_page()
    outside: list[str] = []

    def route(request: Any) -> None:
        host = urlsplit(request.request.url).hostname
        if request.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            request.continue_()
        else:
            outside.append(request.request.url)
            request.abort()

    page.route("**/*", route)
    page.goto(docs_url + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= 40  # every operation is listed
    page.screenshot(path=str(tmp_path / "docs.png"))

    # Authorize with an API key, then try an operation: the key is sent as a Bearer token
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".modal-ux input").first.fill(ADMIN_SECRET)
    page.locator(".modal-ux .auth-btn-wrapper button.authorize").click()
    page.locator(".modal-ux .auth-btn-wrapper button.btn-done").click()
    models = page.locator("#operations-models-list_models_v1_models_get")
    if models.count() == 0:
        models = page.locator(".opblock-get", has=page.locator("[data-path='/v1/models']")).first
    models.locator(".opblock-summary").first.click()
    models.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda r: urlsplit(r.url).path == "/v1/models") as answer:
        models.get_by_role("button", name="Execute").click()
    assert answer.value.status == 200, answer.value.text()
    assert answer.value.request.headers.get("authorization") == f"Bearer {ADMIN_SECRET}"

    page.goto(docs_url + "/redoc")
    page.wait_for_selector("text=Predictions", timeout=30_000)
    page.screenshot(path=str(tmp_path / "redoc.png"))
    assert outside == [], f"the docs asked for assets off this machine: {outside}"
    page.close()
