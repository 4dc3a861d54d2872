"""The UI's session: a signed cookie, the signed-in key, CSRF tokens and flash messages.

The cookie holds no secret: after the key is checked at sign-in (with the same
``authenticate`` the API uses) it keeps the key's id and a prefix of its stored
hash, signed with ``session_secret`` (itsdangerous) and timestamped. Every request
looks the key up again, so a revoked key is signed out at once on every replica.

CSRF: every session carries a random token. Each form sends it as the ``csrf``
field and every ``fetch`` as the ``X-CSRF-Token`` header; a state-changing request
without the session's token is refused (403). The cookie is ``SameSite=Lax`` (so a
link from an alert e-mail still opens signed in) and ``HttpOnly``; the token is
rotated at sign-in and sign-out.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from app.auth import Principal
from app.catalog import repository as catalog
from app.settings import Settings
from storage.tables import ApiKey

COOKIE = "driftdesk_session"
COOKIE_PATH = "/ui"
MAX_AGE_SECONDS = 12 * 3600  # a working day, then sign in again
_HASH_PREFIX = 16
_PROCESS_SECRET = secrets.token_urlsafe(32)
UI_SCOPES = ("review", "admin")


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    secret = settings.session_secret.get_secret_value() if settings.session_secret else None
    return URLSafeTimedSerializer(secret or _PROCESS_SECRET, salt="driftdesk.ui.session")


@dataclass
class UiSession:
    """The decoded cookie; ``changed`` when it must be written back."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    key_id: str | None = None
    key_hash: str | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)
    # the ticket this reviewer finished last: what "undo" reopens
    undo: int | None = None
    # the queue filters of the last "Claim next" (model, kind): "next" keeps to them
    claim_filter: dict[str, str] = field(default_factory=dict)
    # the ticket the UI claimed after the last resolution, with its lease token: undoing
    # that resolution releases it
    auto_claim: tuple[int, str] | None = None
    changed: bool = False

    def sign_in(self, key: ApiKey) -> None:
        self.key_id = key.id
        self.key_hash = key.secret_hash[:_HASH_PREFIX]
        self.csrf = secrets.token_urlsafe(24)  # a new token per sign-in (no fixation)
        self.changed = True

    def sign_out(self) -> None:
        self.key_id = self.key_hash = None
        self.undo = None
        self.csrf = secrets.token_urlsafe(24)
        self.changed = True

    def flash(self, message: str, level: str = "info") -> None:
        self.flashes.append((level, message))
        self.changed = True

    def pop_flashes(self) -> list[tuple[str, str]]:
        out, self.flashes = self.flashes, []
        if out:
            self.changed = True
        return out

    def remember_undo(self, ticket_id: int | None) -> None:
        self.undo = ticket_id
        self.changed = True

    def remember_auto_claim(self, claim: tuple[int, str] | None) -> None:
        if claim != self.auto_claim:
            self.auto_claim = claim
            self.changed = True

    def set_claim_filter(self, filters: dict[str, str]) -> None:
        self.claim_filter = filters
        self.changed = True

    def dump(self) -> dict[str, Any]:
        return {
            "c": self.csrf,
            "k": self.key_id,
            "h": self.key_hash,
            "f": self.flashes,
            "u": self.undo,
            "q": self.claim_filter,
            "a": list(self.auto_claim) if self.auto_claim else None,
        }


def load(request: Request) -> UiSession:
    """The request's session (decoded once, kept on ``request.state``)."""
    cached = getattr(request.state, "ui_session", None)
    if isinstance(cached, UiSession):
        return cached
    settings: Settings = request.app.state.settings
    raw = request.cookies.get(COOKIE)
    session = UiSession(changed=True)
    if raw:
        try:
            data = _serializer(settings).loads(raw, max_age=MAX_AGE_SECONDS)
        except BadSignature:
            data = None
        if isinstance(data, dict) and isinstance(data.get("c"), str):
            session = UiSession(
                csrf=data["c"],
                key_id=data.get("k"),
                key_hash=data.get("h"),
                flashes=[(str(a), str(b)) for a, b in data.get("f") or []],
                undo=data["u"] if isinstance(data.get("u"), int) else None,
                auto_claim=_auto_claim(data.get("a")),
                claim_filter={
                    str(k): str(v)
                    for k, v in (data.get("q") or {}).items()
                    if k in ("model", "kind")
                },
            )
    request.state.ui_session = session
    return session


def _auto_claim(value: Any) -> tuple[int, str] | None:
    if isinstance(value, list) and len(value) == 2:
        ticket_id, token = value
        if isinstance(ticket_id, int) and isinstance(token, str):
            return ticket_id, token
    return None


def save(request: Request, response: Response) -> Response:
    """Write the session cookie onto ``response`` if it changed."""
    session = load(request)
    if session.changed:
        settings: Settings = request.app.state.settings
        secure = request.url.scheme == "https" or settings.public_url.startswith("https:")
        response.set_cookie(
            COOKIE,
            _serializer(settings).dumps(session.dump()),
            max_age=MAX_AGE_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=secure,
        )
    return response


def principal_of(db_session: Session, session: UiSession) -> Principal | None:
    """The signed-in key, if it still exists, is unrevoked and may use the UI."""
    if session.key_id is None or session.key_hash is None:
        return None
    key = catalog.key(db_session, session.key_id)
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_hash[:_HASH_PREFIX], session.key_hash):
        return None
    principal = Principal(key_id=key.id, name=key.name, scopes=frozenset(key.scopes))
    return principal if principal.can(*UI_SCOPES) else None


def csrf_ok(request: Request, submitted: str | None) -> bool:
    """The token matches the session's, and a browser-sent Origin is this site."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc != request.url.netloc:
            return False
    token = load(request).csrf
    return bool(submitted) and hmac.compare_digest(str(submitted), token)


def safe_next(target: str | None, default: str = "/ui/") -> str:
    """Only redirect back into the UI (never to another site after sign-in)."""
    if not target or not target.startswith("/ui/") or target.startswith("//") or "\\" in target:
        return default
    return target
