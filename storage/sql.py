"""What differs between SQLite and PostgreSQL, behind three helpers.

:func:`dialect` names the database a session (or engine, or connection) talks
to, :func:`upsert` builds an INSERT that takes ``ON CONFLICT`` clauses on both,
and :func:`advisory_lock` takes one of the named PostgreSQL advisory locks
(:class:`LockKey`); on SQLite, write transactions are serialised already, so
there is nothing to take. In storage/ (not app/db.py) because the queue's
repository needs them and imports nothing of app/. :func:`newest_first` is the
one newest-first, keyset-paginated read the repositories share.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

SQLITE, POSTGRESQL = "sqlite", "postgresql"


def dialect(bind: Session | Connection | Engine) -> str:
    """``"sqlite"`` or ``"postgresql"``: the database ``bind`` talks to."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name


def upsert(session: Session, table: Any) -> Any:
    """``INSERT INTO table`` in the session's dialect, so it takes ``on_conflict_do_*``."""
    return (postgresql.insert if dialect(session) == POSTGRESQL else sqlite.insert)(table)


class LockKey(Enum):
    """Every advisory lock driftdesk takes (transaction-scoped), one number each."""

    # several replicas start at once: only one may create the first admin key
    FIRST_ADMIN_KEY = 7419001
    # one process evaluates a model at a time (with the model's id as the second key)
    DRIFT_EVALUATION = 7419002
    # one transaction of a model spends its label budget or merges its data-quality
    # groups at a time (both are read, then written); only the budget is waited for
    TICKETS = 7419003
    # one process runs the alert rules at a time
    ALERT_RULES = 7419005
    # one process judges a model's performance windows at a time (the model's id second)
    PERFORMANCE_EVALUATION = 7419015
    # one transaction moves a model's noted label changes into its audited sums at a time
    PERFORMANCE_LABELS = 7419016
    # one process merges the ticket volume's partial rows at a time
    TICKET_VOLUME = 7419017


def advisory_lock(
    session: Session, key: LockKey, *, item: int | None = None, wait: bool = False
) -> bool:
    """Take lock ``key`` (of ``item``, if given) until the transaction ends; whether it was got.

    ``wait=True`` blocks until the lock is free (and so always gets it); otherwise
    another holder means ``False`` at once. Always ``True`` on SQLite.
    """
    if dialect(session) != POSTGRESQL:
        return True
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    if item is None:
        statement, params = text(f"SELECT {function}(:key)"), {"key": key.value}
    else:
        statement = text(f"SELECT {function}(:key, :item)")
        params = {"key": key.value, "item": item}
    got = session.execute(statement, params)
    return True if wait else bool(got.scalar_one())


def newest_first(
    session: Session, table: Any, *where: Any, limit: int, before: int | None = None
) -> list[Any]:
    """Rows of ``table`` matching ``where``, newest (highest id) first, keyset-paginated
    on id below ``before``; ``limit`` rows at most."""
    stmt = select(table).where(*where).order_by(table.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(table.id < before)
    return list(session.scalars(stmt))
