"""Migrations: a full round trip, and the models agree with the schema the migrations build."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Index, create_engine, inspect, pool

from app.ops import migrations
from app.tables import metadata


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _revisions(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return migrations.current_revisions(engine)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    heads = migrations.head_revisions()
    assert _revisions(db_url) == heads
    modelled = set(metadata.tables)
    assert modelled <= _tables(db_url)

    migrations.downgrade(db_url, "base")
    assert _revisions(db_url) == set()
    assert _tables(db_url) <= {"alembic_version"}

    migrations.upgrade(db_url)
    assert _revisions(db_url) == heads
    assert modelled <= _tables(db_url)


def _index_columns(index: Index) -> list[str]:
    names = []
    for expr in index.expressions:
        text = expr.name if isinstance(expr, Column) else str(expr)
        names.append(re.sub(r"\s+(ASC|DESC)$", "", text, flags=re.IGNORECASE).split(".")[-1])
    return names


def _without_sqlite_sort_order(diff: list[Any]) -> list[Any]:
    """Drop index pairs that differ only by a sort order SQLite does not reflect.

    SQLite's index reflection reports ``priority DESC`` as the column ``priority``,
    so autogenerate sees a DESC index as removed and added again. Such a pair (same
    name, same columns once ASC/DESC is dropped) is not a difference.
    """
    removed = {d[1].name: d[1] for d in diff if d[0] == "remove_index"}
    added = {d[1].name: d[1] for d in diff if d[0] == "add_index"}
    same = {
        name
        for name in removed.keys() & added.keys()
        if _index_columns(removed[name]) == _index_columns(added[name])
        and bool(removed[name].unique) == bool(added[name].unique)
    }
    return [d for d in diff if not (d[0] in ("remove_index", "add_index") and d[1].name in same)]


def test_models_and_migrations_agree(db_url: str) -> None:
    """What autogenerate would write for a new revision is nothing at all."""
    engine = create_engine(db_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "render_as_batch": conn.dialect.name == "sqlite",
                },
            )
            diff: list[Any] = compare_metadata(context, metadata)
            if conn.dialect.name == "sqlite":
                diff = _without_sqlite_sort_order(diff)
    finally:
        engine.dispose()
    assert diff == [], f"the models differ from the migrations: {diff}"


def test_there_is_one_head() -> None:
    # two heads would mean two migrations forked from one parent: `upgrade head` fails
    assert len(migrations.head_revisions()) == 1


def test_replicas_migrating_at_once_take_turns(db_url: str, tmp_path: Any) -> None:
    # every `driftdesk serve` and `worker` migrates on start; on PostgreSQL several
    # start together, and an advisory lock makes them take turns
    if not db_url.startswith("postgresql"):
        pytest.skip("an advisory lock serialises PostgreSQL replicas; SQLite is one host's file")
    migrations.downgrade(db_url, "base")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTDESK_")}
    env["DRIFTDESK_DATABASE_URL"] = db_url
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "migrate"],
            env=env,
            cwd=Path(__file__).resolve().parents[3],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0].decode(errors="replace") for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0], outputs
    assert _revisions(db_url) == migrations.head_revisions()
    assert set(metadata.tables) <= _tables(db_url)
