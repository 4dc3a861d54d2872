"""/v1/keys: API keys (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.auth import AdminDep, SessionDep, new_key
from app.catalog import repository
from app.errors import NotFound
from app.pagination import CursorQuery, LimitQuery, cursor_field, page
from app.schemas import KeyCreate, KeyCreated, KeyOut, Page
from storage.base import utcnow
from storage.tables import ApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])


def _out(row: ApiKey) -> KeyOut:
    return KeyOut(
        id=row.id,
        name=row.name,
        scopes=row.scopes,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@router.post("", status_code=201, response_model=KeyCreated)
def create_key(body: KeyCreate, session: SessionDep, _admin: AdminDep) -> KeyCreated:
    """Create a key; its secret is in this response and never again."""
    row, secret = new_key(body.name, list(body.scopes))
    session.add(row)
    session.flush()
    return KeyCreated(**_out(row).model_dump(), secret=secret)


@router.get("", response_model=Page[KeyOut])
def list_keys(
    session: SessionDep, _admin: AdminDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> Page[KeyOut]:
    after = cursor_field(cursor, "id", str)
    rows, next_cursor = page(
        repository.keys(session, limit=limit + 1, after=after), limit, lambda k: {"id": k.id}
    )
    return Page[KeyOut](items=[_out(r) for r in rows], next_cursor=next_cursor)


@router.delete("/{key_id}", status_code=204)
def revoke_key(key_id: str, session: SessionDep, _admin: AdminDep) -> Response:
    """Revoke a key: every request with it fails from now on, on every replica."""
    row = repository.key(session, key_id)
    if row is None:
        raise NotFound(f"no key with id {key_id!r}")
    if row.revoked_at is None:  # revoking twice is a no-op, not an error
        row.revoked_at = utcnow()
    return Response(status_code=204)
