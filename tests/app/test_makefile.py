"""`make run` installs what serving needs; the dev tools come with `make test` and `make lint`.

The Makefile runs in a scratch copy with `make -n` (print the commands, run none), so
nothing is installed and the repository's virtualenv is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "clients" / "python").mkdir(parents=True)
    (tmp_path / "clients" / "python" / "pyproject.toml").touch()
    return tmp_path


def dry_run(folder: Path, target: str, *, path: str, **variables: str) -> str:
    done = subprocess.run(
        ["make", "-n", target, *(f"{k}={v}" for k, v in variables.items())],
        cwd=folder,
        env={"PATH": path, "HOME": str(folder)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def installs(script: str) -> list[str]:
    return [
        line for line in script.splitlines() if " install " in line and "--upgrade pip" not in line
    ]


SYSTEM = "/usr/local/bin:/usr/bin:/bin"


def test_run_installs_what_serving_needs_and_no_dev_tools(copy: Path) -> None:
    script = dry_run(copy, "run", path=SYSTEM, UV="")
    [line] = installs(script)
    assert line.endswith("pip install --quiet -e . -e clients/python"), line
    assert "dev" not in line
    assert "driftdesk serve" in script


@pytest.mark.parametrize("target", ["test", "lint"])
def test_test_and_lint_add_the_dev_tools(copy: Path, target: str) -> None:
    script = dry_run(copy, target, path=SYSTEM, UV="")
    lines = installs(script)
    assert any("'.[dev,demo]'" in line for line in lines), script
    assert installs(dry_run(copy, "run", path=SYSTEM, UV=""))[0] == lines[0]  # serving first


def test_uv_installs_when_it_is_on_the_path(copy: Path) -> None:
    bin_dir = copy / "bin"
    bin_dir.mkdir()
    uv = bin_dir / "uv"
    uv.write_text("#!/bin/sh\nexit 0\n")
    uv.chmod(0o755)
    script = dry_run(copy, "run", path=f"{bin_dir}:{SYSTEM}")
    [line] = installs(script)
    assert line == f"{uv} pip install --quiet --python .venv/bin/python -e . -e clients/python"
    assert f"{uv} venv" in script
    if shutil.which("uv", path=SYSTEM) is None:  # and pip where there is no uv
        assert "-m pip install" in installs(dry_run(copy, "run", path=SYSTEM))[0]
