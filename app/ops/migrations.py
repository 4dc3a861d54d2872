"""Alembic, driven from code: `driftdesk migrate`, `serve` on start, and /readyz."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from alembic import command


def script_location() -> Path:
    """The repository's alembic/ folder (or DRIFTDESK_ALEMBIC_DIR, e.g. in the image)."""
    configured = os.environ.get("DRIFTDESK_ALEMBIC_DIR")
    path = Path(configured) if configured else Path(__file__).resolve().parents[2] / "alembic"
    if not (path / "env.py").exists():
        raise RuntimeError(
            f"alembic migrations not found at {path}: set DRIFTDESK_ALEMBIC_DIR to the "
            "repository's alembic/ folder"
        )
    return path


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revisions() -> set[str]:
    return set(ScriptDirectory(str(script_location())).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())
