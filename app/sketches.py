"""The reference sketch of each reference, parsed once per process.

References never change once written (a new baseline is a new row), so caching
their parsed bin specifications by id is always safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy.orm import Session

from app.models import Reference
from monitors.sketch import SketchSpec

_CACHE_SIZE = 64
_cache: OrderedDict[int, SketchSpec] = OrderedDict()
_lock = threading.Lock()


def get_spec(session: Session, reference_id: int) -> SketchSpec:
    with _lock:
        spec = _cache.get(reference_id)
        if spec is not None:
            _cache.move_to_end(reference_id)
            return spec
    ref = session.get(Reference, reference_id)
    if ref is None:
        raise LookupError(f"reference {reference_id} does not exist")
    spec = SketchSpec.from_dict(ref.sketch)
    with _lock:
        _cache[reference_id] = spec
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return spec
