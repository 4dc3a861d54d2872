"""The database: engine, and the session that is a request's unit of work.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy
timeout; PostgreSQL goes through psycopg 3. Services never commit: the caller
that owns the session (a request, a background loop iteration) does.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from storage.sql import SQLITE, dialect

try:
    import fcntl
except ImportError:  # not POSIX: writers of one process still queue on the thread lock
    fcntl = None  # type: ignore[assignment]


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _json_loads(value: Any) -> Any:
    # SQLite gives a JSON column NUMERIC affinity: a bare number (a regression
    # prediction or label) is stored as a number and read back as one, not as text.
    if isinstance(value, int | float):
        return value
    return orjson.loads(value)


_HOLDS_WRITER = "driftdesk_holds_writer"


class SqliteWriter:
    """SQLite's one writer, queued instead of polled.

    Without it, concurrent writers meet on SQLite's busy handler, which sleeps up
    to 100 ms between tries: under concurrent ingest, p99 latency was seconds while
    the database sat idle between the sleeps. Writers of one process queue on a
    thread lock; writers of different processes (uvicorn workers, a
    ``driftdesk worker``) on an ``flock`` of a file beside the database. Both hand
    the lock over the moment it is released.

    The lock is a plain ``Lock``, owned by no thread: a request's unit of work
    (a FastAPI dependency) is entered on one worker thread and left on another.
    It is not reentrant, so a write transaction must never open another one.

    It is held for a write transaction only — from ``BEGIN IMMEDIATE`` until the
    connection is back in the pool — not for a whole request, so the thread
    hops of a request (authentication, validation, rendering) never hold up
    other writers.
    """

    def __init__(self, database: str | None) -> None:
        self._thread = threading.Lock()
        self._fd: int | None = None
        if fcntl is not None and database and database != ":memory:":
            try:
                self._fd = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:  # a read-only folder: the thread lock and busy timeout remain
                self._fd = None

    def __enter__(self) -> None:
        self._thread.acquire()
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# the writer of each SQLite engine, closed by Database.dispose
_writers: weakref.WeakKeyDictionary[Engine, SqliteWriter] = weakref.WeakKeyDictionary()


def make_engine(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10) -> Engine:
    """An engine configured for driftdesk's two backends."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, sqlite_synchronous=sqlite_synchronous, pool_size=pool_size)
    # A database host that does not answer fails a request in seconds (a 503 the
    # client retries), not after the operating system's TCP timeout of minutes.
    connect_args = {} if "connect_timeout" in url else {"connect_timeout": 5}
    engine = create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args=connect_args,
    )
    _ping_when_idle(engine)
    return engine


def _sqlite_engine(url: str, *, sqlite_synchronous: str, pool_size: int) -> Engine:
    """SQLite in WAL mode, its writers queued on one lock per database file (SqliteWriter)."""
    engine = create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=_json_loads,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=pool_size,
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself (pysqlite's implicit transactions
        # would defer it past our first statement).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    writer = SqliteWriter(engine.url.database)
    _writers[engine] = writer

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        # A transaction that will write takes the write lock up front (IMMEDIATE),
        # after queueing on the writer lock, so writers are handed SQLite's lock
        # in turn instead of polling for it; a deferred read-then-write transaction
        # would fail at once with SQLITE_BUSY.
        if conn.get_execution_options().get("driftdesk_readonly"):
            conn.exec_driver_sql("BEGIN")
            return
        writer.__enter__()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writer.__exit__()
            raise
        conn.info[_HOLDS_WRITER] = True

    @event.listens_for(engine, "checkin")
    def _sqlite_checkin(_dbapi_conn: Any, record: Any) -> None:
        # the transaction is over (committed, or rolled back on return to the
        # pool): the next writer may begin
        if record.info.pop(_HOLDS_WRITER, False):
            writer.__exit__()

    return engine


# A pooled connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 10.0
_CHECKED_IN_AT = "driftdesk_checked_in_at"


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, for connections that sat idle only.

    ``pool_pre_ping`` costs a round trip on every checkout: a tenth of a queue
    request's time. A connection in use within the last seconds is live, or its
    failure invalidates the whole pool (SQLAlchemy does that on a disconnect
    error), so only connections idle for longer are pinged — those are the ones
    a database restart or an idle-session timeout has silently closed.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN_AT)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with dbapi_conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as exc:
            # the pool discards this connection and checks out (or opens) another
            raise DisconnectionError(f"pooled connection went stale: {exc}") from exc


class Database:
    """An engine and its session factory: one per process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self.readonly_sessionmaker = sessionmaker(
            engine.execution_options(driftdesk_readonly=True),
            expire_on_commit=False,
            autoflush=False,
        )

    @property
    def is_sqlite(self) -> bool:
        return dialect(self.engine) == SQLITE

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back on any error.

        ``readonly`` sessions do not take SQLite's write lock, so reads run beside
        a writer; on PostgreSQL both kinds are the same.
        """
        factory = self.readonly_sessionmaker if readonly else self.sessionmaker
        with factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def ping(self) -> None:
        """One round trip to the database (raises when it does not answer)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        writer = _writers.pop(self.engine, None)
        if writer is not None:
            writer.close()
