"""Alembic environment: driftdesk's metadata, SQLite in batch mode."""

from __future__ import annotations

from sqlalchemy import engine_from_config, pool, text
from sqlalchemy.engine import Connection

from alembic import context
from app.settings import get_settings
from app.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
target_metadata = metadata


def run_offline() -> None:
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = engine_from_config(
            {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
        )
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # replicas and workers all migrate on start: one at a time, the others then
        # find the schema at head and do nothing (released at the end of the session)
        connection.execute(text("SELECT pg_advisory_lock(7419000)"))
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
