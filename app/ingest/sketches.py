"""The reference sketch of each reference, parsed once per process.

References never change once written (a new baseline is a new row), so caching
their parsed bin specifications by database and id is always safe
(:class:`app.caching.PerDatabaseCache`).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.caching import PerDatabaseCache
from monitors.sketch import SketchSpec
from storage.tables import Reference

_cache: PerDatabaseCache[SketchSpec] = PerDatabaseCache(64)


def get_spec(session: Session, reference_id: int) -> SketchSpec:
    spec = _cache.get(session, reference_id)
    if spec is not None:
        return spec
    ref = session.get(Reference, reference_id)
    if ref is None:
        raise LookupError(f"reference {reference_id} does not exist")
    spec = SketchSpec.from_dict(ref.sketch)
    _cache.put(session, reference_id, spec)
    return spec
