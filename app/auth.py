"""API keys: generation, hashing at rest, and scope checks on every route.

A secret looks like ``dd_<key id>_<random>``; only its SHA-256 is stored (the
secret is 256 bits of randomness, so a slow password hash buys nothing). Every
request looks its key up in the database, so revocation takes effect at once on
every replica.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

from fastapi import Depends, Request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.db import Database
from app.errors import Forbidden, Unauthorized
from app.settings import Settings
from exceptions_queue.events import Actor
from storage.base import utcnow
from storage.sql import LockKey, advisory_lock
from storage.tables import ApiKey

log = logging.getLogger("driftdesk.auth")

Scope = Literal["ingest", "review", "admin"]
SCOPES: tuple[Scope, ...] = ("ingest", "review", "admin")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(name: str, scopes: list[str], *, secret: str | None = None) -> tuple[ApiKey, str]:
    """A new key row and its secret (the secret is never stored)."""
    key_id = secrets.token_hex(6)
    secret = secret or f"dd_{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=key_id,
        name=name,
        scopes=sorted(set(scopes)),
        secret_hash=hash_secret(secret),
        created_at=utcnow(),
    )
    return row, secret


def has_admin_key(session: Session) -> bool:
    keys = session.scalars(select(ApiKey).where(ApiKey.revoked_at.is_(None))).all()
    return any("admin" in k.scopes for k in keys)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and scopes."""

    key_id: str
    name: str
    scopes: frozenset[str]

    def can(self, *scopes: str) -> bool:
        return "admin" in self.scopes or any(s in self.scopes for s in scopes)

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        return f"{self.name} ({self.key_id})"

    @property
    def queue_actor(self) -> Actor:
        """Who acts on the queue: the same for an API key and a UI session signed in with it."""
        return Actor(key_id=self.key_id, name=self.actor)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


# The dependencies below that do no I/O are ``async def``: FastAPI runs a sync
# dependency in the thread pool, one hop (and one GIL hand-over) per dependency.
async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


def _session(request: Request) -> Iterator[Session]:
    db = get_db(request)
    with db.session(readonly=request.method in ("GET", "HEAD")) as session:
        request.state.unit_of_work = session
        try:
            yield session
        finally:
            request.state.unit_of_work = None


# scope="function": the unit of work commits before the response is sent, so a
# 2xx always means committed.
SessionDep = Annotated[Session, Depends(_session, scope="function")]


def secret_hash_of(authorization: str | None) -> str:
    """The stored hash of the bearer key in an ``Authorization`` header (401 when it has none)."""
    if not authorization:
        raise Unauthorized(
            "missing API key: send 'Authorization: Bearer <key>' "
            "(create one with 'driftdesk keys create')"
        )
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("malformed Authorization header: expected 'Bearer <key>'")
    return hash_secret(secret.strip())


def principal_of(session: Session, secret_hash: str) -> Principal:
    """The live key with this hash (401 when it is unknown or revoked)."""
    row = session.execute(_KEY_BY_HASH, {"secret_hash": secret_hash}).first()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("unknown or revoked API key")
    return Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))


def authenticate(session: Session, authorization: str | None) -> Principal:
    return principal_of(session, secret_hash_of(authorization))


# Every request runs it: built once, not per call, on the table's columns (ORM
# attributes would route it through the ORM's execution context on every request).
_KEYS = ApiKey.__table__.c
_KEY_BY_HASH = select(_KEYS.id, _KEYS.name, _KEYS.scopes, _KEYS.revoked_at).where(
    _KEYS.secret_hash == bindparam("secret_hash")
)


def permit(principal: Principal, scopes: tuple[Scope, ...]) -> Principal:
    """``principal`` if it holds one of ``scopes`` (admin holds all), else 403."""
    if not principal.can(*scopes):
        raise Forbidden(
            f"this key lacks the scope for this route: needs one of {', '.join(scopes)}"
            + ("" if "admin" in scopes else " (or admin)")
        )
    return principal


def _principal(request: Request) -> Principal:
    authorization = request.headers.get("authorization")
    unit_of_work: Session | None = getattr(request.state, "unit_of_work", None)
    if unit_of_work is not None:
        # The route has a unit of work (SessionDep, declared before the key): the
        # key is checked in its transaction, one session and round trip fewer.
        principal = authenticate(unit_of_work, authorization)
    else:
        # Its own short read-only session: routes without a unit of work (ingest)
        # open their own write transactions, which the key check must not hold.
        with get_db(request).session(readonly=True) as session:
            principal = authenticate(session, authorization)
    request.state.principal = principal
    return principal


def require(*scopes: Scope) -> object:
    """A dependency that admits keys holding any of ``scopes`` (admin holds all)."""

    async def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        return permit(principal, scopes)

    return Depends(check)


Result = TypeVar("Result")


class UnitOfWork:
    """A request's key check and work in one transaction (the queue's hot routes, ingest).

    With SessionDep, the key check and a sync endpoint, a request makes a
    thread-pool hop for each, and one more to validate a sync endpoint's
    response; a hop costs more CPU than a claim's SQL. A unit of work makes one:
    :meth:`run` opens the session, looks the key up (401/403), does the work
    and commits before the response is sent. The dependency only reads the
    header (a missing or malformed one is a 401 at once); if the body then
    fails validation, the 422 handler calls :meth:`check` first, so a caller
    without a valid key still gets its 401/403, never the 422.
    """

    def __init__(self, db: Database, secret_hash: str, scopes: tuple[Scope, ...]) -> None:
        self.db = db
        self.secret_hash = secret_hash
        self.scopes = scopes

    def authorize(self, session: Session) -> Principal:
        """The caller, looked up in ``session`` (401 unknown or revoked, 403 wrong scope)."""
        return permit(principal_of(session, self.secret_hash), self.scopes)

    async def run(self, work: Callable[[Session, Principal], Result]) -> Result:
        """``work(session, principal)`` in the thread pool, then commit (roll back on error)."""

        def go() -> Result:
            with self.db.session() as session:
                return work(session, self.authorize(session))

        return await run_in_threadpool(go)

    async def check(self) -> Principal:
        """Only the key check, in a read-only session (for a request refused before :meth:`run`)."""

        def go() -> Principal:
            with self.db.session(readonly=True) as session:
                return self.authorize(session)

        return await run_in_threadpool(go)


def unit_of_work(*scopes: Scope) -> object:
    """A dependency giving a :class:`UnitOfWork` to keys holding any of ``scopes``."""

    async def caller(request: Request) -> UnitOfWork:
        work = UnitOfWork(
            get_db(request), secret_hash_of(request.headers.get("authorization")), scopes
        )
        request.state.check_key = work.check
        return work

    return Depends(caller)


AdminDep = Annotated[Principal, require("admin")]
ReviewerDep = Annotated[Principal, require("review")]
IngestDep = Annotated[Principal, require("ingest")]
# An ingest key reads what a deployed model's client needs, by the model's name: its
# schema (GET /v1/models/{name}) and its baseline's summary (GET .../reference).
ReaderDep = Annotated[Principal, require("review", "ingest")]


def ensure_admin_key(db: Database, settings: Settings) -> None:
    """Make sure an admin key exists: the bootstrap secret, or a generated one printed once."""
    with db.session() as session:
        # several replicas start at once: only one may create the first key
        advisory_lock(session, LockKey.FIRST_ADMIN_KEY, wait=True)
        if has_admin_key(session):
            return
        bootstrap = settings.bootstrap_admin_key
        if bootstrap is not None and session.scalar(
            select(ApiKey.id).where(ApiKey.secret_hash == hash_secret(bootstrap.get_secret_value()))
        ):
            # That secret was the admin key and has been revoked: revocation stands
            # (re-creating it also broke start-up on the unique secret hash).
            log.error(
                "DRIFTDESK_BOOTSTRAP_ADMIN_KEY is a revoked key and no admin key is left: "
                "create one with 'driftdesk keys create --name admin --scopes admin'"
            )
            return
        row, secret = new_key(
            "bootstrap-admin", ["admin"], secret=bootstrap.get_secret_value() if bootstrap else None
        )
        session.add(row)
    if bootstrap is None:
        # Printed, not logged: it must not land in log storage, and is shown this once.
        print(
            "\n  driftdesk: no admin key existed, so one was created. It is shown only now:\n\n"
            f"    {secret}\n\n"
            "  Use it as 'Authorization: Bearer <key>' and create narrower keys with it.\n",
            file=sys.stderr,
            flush=True,
        )
    else:
        log.info("bootstrap admin key installed", extra={"key_id": row.id})
