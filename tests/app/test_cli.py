"""The `driftdesk` command: migrate, keys create, the admin key printed once by serve, bad settings."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.ops import migrations
from app.settings import Settings
from bench._server import DriftdeskServer, driftdesk_command


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTDESK_")}
    return subprocess.run(
        [*driftdesk_command(), *args],
        env={**clean, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def revision(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}


def test_migrate_brings_an_empty_database_to_head(tmp_path: Path) -> None:
    db = tmp_path / "dd.db"
    env = {"DRIFTDESK_DATABASE_URL": f"sqlite:///{db}"}
    done = run(tmp_path, "migrate", env=env)
    assert done.returncode == 0, done.stderr
    assert "latest revision" in done.stdout
    assert revision(db) == migrations.head_revisions()
    again = run(tmp_path, "migrate", env=env)  # idempotent
    assert again.returncode == 0, again.stderr


def test_keys_create_prints_a_working_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dd.db'}"
    done = run(
        tmp_path,
        "keys",
        "create",
        "--name",
        "ci",
        "--scopes",
        "ingest,review",
        "--create-database",
        env={"DRIFTDESK_DATABASE_URL": url},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1  # stdout is the secret alone, for `KEY=$(driftdesk keys create ...)`
    secret = lines[0]
    assert secret.startswith("dd_")
    assert "not shown again" in done.stderr
    assert secret not in done.stderr

    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        assert client.get("/v1/models", headers=headers).status_code == 200
        assert client.get("/v1/models/x/predictions", headers=headers).status_code == 404
        assert client.get("/v1/keys", headers=headers).status_code == 403


def test_keys_create_from_another_folder_creates_no_database(tmp_path: Path) -> None:
    server_folder, elsewhere = tmp_path / "server", tmp_path / "elsewhere"
    server_folder.mkdir()
    elsewhere.mkdir()
    assert run(server_folder, "migrate").returncode == 0  # the server's ./driftdesk.db
    args = ("keys", "create", "--name", "ci", "--scopes", "review")

    refused = run(elsewhere, *args)
    assert refused.returncode == 1
    assert refused.stdout == ""  # no secret that no server would accept
    assert "Traceback" not in refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert str(elsewhere / "driftdesk.db") in line  # which database it would have written
    assert "DRIFTDESK_DATABASE_URL" in line
    assert "--create-database" in line
    assert not (elsewhere / "driftdesk.db").exists()

    done = run(server_folder, *args)  # from the server's folder: its database, named
    assert done.returncode == 0, done.stderr
    assert f"sqlite:///{server_folder / 'driftdesk.db'}" in done.stderr
    assert done.stdout.startswith("dd_")

    created = run(elsewhere, *args, "--create-database")
    assert created.returncode == 0, created.stderr
    assert (elsewhere / "driftdesk.db").exists()
    assert f"sqlite:///{elsewhere / 'driftdesk.db'}" in created.stderr


def test_start_up_logs_the_migrations_without_alembic_plugin_noise(tmp_path: Path) -> None:
    code = (
        "from app import logs; from app.ops import migrations; logs.configure('INFO', 'text'); "
        f"migrations.upgrade('sqlite:///{tmp_path / 'dd.db'}')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "Running upgrade" in done.stderr  # the migrations themselves are still told
    assert "setup plugin" not in done.stderr, done.stderr


def test_keys_create_refuses_unknown_scopes(tmp_path: Path) -> None:
    env = {"DRIFTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'dd.db'}"}
    for scopes in ("root", "ingest,root", ","):
        done = run(tmp_path, "keys", "create", "--name", "x", "--scopes", scopes, env=env)
        assert done.returncode != 0
        assert done.stdout == ""
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("driftdesk: error:")
        assert "ingest" in line


@pytest.mark.parametrize(
    ("setting", "value", "command"),
    [
        ("DRIFTDESK_DATABASE_URL", "mysql://root@localhost/dd", "migrate"),
        ("DRIFTDESK_MAX_BATCH_RECORDS", "lots", "migrate"),
        ("DRIFTDESK_MAX_BATCH_RECORDS", "0", "serve"),
        ("DRIFTDESK_LOG_FORMAT", "xml", "serve"),
        ("DRIFTDESK_SQLITE_SYNCHRONOUS", "SOMETIMES", "worker"),
    ],
)
def test_bad_configuration_is_one_clear_line(
    tmp_path: Path, setting: str, value: str, command: str
) -> None:
    env = {"DRIFTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'dd.db'}", setting: value}
    done = run(tmp_path, command, env=env)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"driftdesk: error: invalid configuration {setting}:")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "dd.db").exists()  # refused before touching anything


def test_a_database_that_cannot_be_reached_is_a_clear_error(tmp_path: Path) -> None:
    for url in (
        f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}",
        "postgresql+psycopg://postgres@127.0.0.1:1/driftdesk",
    ):
        done = run(tmp_path, "migrate", env={"DRIFTDESK_DATABASE_URL": url})
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        first = done.stderr.strip().splitlines()[0]
        assert first.startswith("driftdesk: error: could not migrate")


def test_usage_without_a_command(tmp_path: Path) -> None:
    done = run(tmp_path)
    assert done.returncode == 2
    assert "serve" in done.stderr
    assert "migrate" in done.stderr


@pytest.mark.slow
def test_serve_prints_a_generated_admin_key_once(tmp_path: Path) -> None:
    env = {"DRIFTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'dd.db'}"}
    first = DriftdeskServer(env=env, log=tmp_path / "first.log", cwd=tmp_path).start()
    try:
        keys = re.findall(r"\bdd_[A-Za-z0-9_-]{20,}", first.output())
        assert len(keys) == 1, first.output()
        secret = keys[0]
        r = httpx.get(first.url + "/v1/keys", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200
        assert [k["scopes"] for k in r.json()["items"]] == [["admin"]]
    finally:
        first.stop()
    second = DriftdeskServer(env=env, log=tmp_path / "second.log", cwd=tmp_path).start()
    try:
        assert secret not in second.output()
        assert not re.search(r"\bdd_[A-Za-z0-9_-]{20,}", second.output())
        r = httpx.get(second.url + "/v1/keys", headers={"Authorization": f"Bearer {secret}"})
        assert len(r.json()["items"]) == 1  # no second admin key either
    finally:
        second.stop()


@pytest.mark.slow
def test_serve_with_a_bootstrap_key_prints_no_secret(tmp_path: Path) -> None:
    secret = "dd_bootstrap_for_automation_0123456789"
    env = {
        "DRIFTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'dd.db'}",
        "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": secret,
    }
    with DriftdeskServer(env=env, log=tmp_path / "serve.log", cwd=tmp_path) as server:
        r = httpx.get(server.url + "/v1/keys", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200
        assert httpx.get(server.url + "/readyz").status_code == 200
    assert secret not in server.output()
    assert not re.search(r"\bdd_[A-Za-z0-9_-]{20,}", server.output())


@pytest.mark.slow
def test_serve_runs_the_background_loops_once_whatever_its_workers(tmp_path: Path) -> None:
    # with several workers the loops run in the supervising process, not once per worker
    env = {
        "DRIFTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'dd.db'}",
        "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": "dd_bootstrap_for_loops_0123456789",
        "DRIFTDESK_LOG_LEVEL": "INFO",
        "DRIFTDESK_LOG_FORMAT": "text",
    }
    for workers, args in (
        (2, ["--workers", "2"]),
        (1, []),
        (2, ["--workers", "2", "--no-background"]),
    ):
        log = tmp_path / f"serve-{workers}-{len(args)}.log"
        server = DriftdeskServer(env=env, args=args, log=log, cwd=tmp_path).start()
        try:
            deadline = time.monotonic() + 120  # each worker imports the app: slow on a busy machine
            while (
                time.monotonic() < deadline
                and server.output().count("Application startup complete") < workers
            ):
                time.sleep(0.2)
            assert server.output().count("Application startup complete") == workers
        finally:
            server.stop()
        started = server.output().count("background loops started")
        assert started == (0 if "--no-background" in args else 1), (args, server.output())
