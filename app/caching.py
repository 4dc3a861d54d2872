"""A small per-process cache of what never changes once written, keyed by database and id.

The database is part of the key: ids restart in every database, and one process
may use several (the tests do, one database per test). A value that can change
(a model, by its name) is cached only by a caller that checks it is still
current where it matters (app.ingest.flows: the write checks it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

V = TypeVar("V")


class PerDatabaseCache(Generic[V]):
    """The ``size`` most recently used values, by (database, id); safe across threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: OrderedDict[tuple[str, Hashable], V] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(bind: Session | Engine, ident: Hashable) -> tuple[str, Hashable]:
        engine = bind.get_bind().engine if isinstance(bind, Session) else bind
        return (engine.url.render_as_string(), ident)

    def get(self, bind: Session | Engine, ident: Hashable) -> V | None:
        key = self._key(bind, ident)
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, bind: Session | Engine, ident: Hashable, value: V) -> None:
        with self._lock:
            self._values[self._key(bind, ident)] = value
            while len(self._values) > self._size:
                self._values.popitem(last=False)

    def discard(self, bind: Session | Engine, ident: Hashable) -> None:
        with self._lock:
            self._values.pop(self._key(bind, ident), None)
