"""The reference sketch of each reference, parsed once per process.

References never change once written (a new baseline is a new row), so caching
their parsed bin specifications by database and id is always safe. The database
is part of the key: ids restart in every database, and one process may use
several (the tests do, one database per test).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy.orm import Session

from monitors.sketch import SketchSpec
from storage.tables import Reference

_CACHE_SIZE = 64
_cache: OrderedDict[tuple[str, int], SketchSpec] = OrderedDict()
_lock = threading.Lock()


def get_spec(session: Session, reference_id: int) -> SketchSpec:
    key = (session.get_bind().engine.url.render_as_string(), reference_id)
    with _lock:
        spec = _cache.get(key)
        if spec is not None:
            _cache.move_to_end(key)
            return spec
    ref = session.get(Reference, reference_id)
    if ref is None:
        raise LookupError(f"reference {reference_id} does not exist")
    spec = SketchSpec.from_dict(ref.sketch)
    with _lock:
        _cache[key] = spec
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return spec
