"""tools/check_imports.py (a step of `make lint`) passes on the tree and fails on a bad import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "check_imports.py"
PACKAGES = ("app", "storage", "exceptions_queue", "monitors", "demo")


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages the rule covers (only their .py files)."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=_not_python)
    return tmp_path


def _not_python(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if not n.endswith(".py") and not (Path(folder) / n).is_dir()]


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_repository_follows_the_rule() -> None:
    result = check(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_copy_passes_before_it_is_broken(tree: Path) -> None:
    assert check(tree).returncode == 0


@pytest.mark.parametrize(
    ("module", "line", "named"),
    [
        ("exceptions_queue/repository.py", "from app.errors import NotFound", "app.errors"),
        ("exceptions_queue/leases.py", "    import app.tickets.views", "app.tickets.views"),
        ("monitors/drift.py", "import storage.tables", "storage.tables"),
        ("storage/tables.py", "from exceptions_queue import states", "exceptions_queue.states"),
        ("app/drift/service.py", "import demo.simulation", "demo.simulation"),
    ],
)
def test_an_import_against_the_rule_fails(tree: Path, module: str, line: str, named: str) -> None:
    if line.startswith("    "):  # a lazy import inside a function counts too
        line = f"def _lazy() -> None:\n{line}"
    append(tree / module, line)
    result = check(tree)
    assert result.returncode == 1
    assert f"forbidden import: {module[:-3].replace('/', '.')}" in result.stdout
    assert f"imports {named}" in result.stdout


def test_an_import_cycle_fails(tree: Path) -> None:
    # app.ingest.columns is imported by app.ingest.store: importing back closes a loop
    append(tree / "app/ingest/columns.py", "def _back() -> None:\n    from app.ingest import store")
    result = check(tree)
    assert result.returncode == 1
    assert "import cycle: " in result.stdout
    assert "app.ingest.columns" in result.stdout and "app.ingest.store" in result.stdout


def test_an_import_only_for_type_checking_is_not_a_dependency(tree: Path) -> None:
    append(
        tree / "exceptions_queue/repository.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.errors import NotFound",
    )
    assert check(tree).returncode == 0


@pytest.mark.parametrize(
    ("module", "line", "says"),
    [
        # a router that imports sqlalchemy's select (and would build a statement)
        ("app/drift/endpoints.py", "from sqlalchemy import select", "import select"),
        ("app/catalog/keys.py", "import sqlalchemy", "import sqlalchemy"),
        ("app/ui/dashboard.py", "from sqlalchemy.orm import aliased", "import aliased"),
        # running SQL directly, even with a statement built elsewhere
        (
            "app/ui/pages.py",
            "def _run(session, stmt):\n    return session.scalars(stmt)",
            ".scalars",
        ),
        (
            "app/ops/endpoints.py",
            "def _run(conn, stmt):\n    return conn.execute(stmt)",
            ".execute",
        ),
        ("app/ui/queue.py", "def _get(db_session, t):\n    return db_session.get(t, 1)", ".get"),
    ],
)
def test_sql_in_a_router_or_ui_page_fails(tree: Path, module: str, line: str, says: str) -> None:
    append(tree / module, line)
    result = check(tree)
    assert result.returncode == 1
    name = module[:-3].replace("/", ".")
    assert f"SQL in a router or UI page: {name}" in result.stdout
    assert says in result.stdout


def test_sql_in_a_repository_and_the_session_type_in_a_router_pass(tree: Path) -> None:
    append(tree / "app/drift/repository.py", "from sqlalchemy import text")
    append(tree / "app/drift/endpoints.py", "from sqlalchemy.orm import Session")
    append(tree / "app/drift/endpoints.py", "from sqlalchemy.exc import IntegrityError")
    result = check(tree)
    assert result.returncode == 0, result.stdout
