"""A small per-process cache of what never changes once written, keyed by database and id.

The database is part of the key: ids restart in every database, and one process
may use several (the tests do, one database per test).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

V = TypeVar("V")


class PerDatabaseCache(Generic[V]):
    """The ``size`` most recently used values, by (database, id); safe across threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: OrderedDict[tuple[str, int], V] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(session: Session, ident: int) -> tuple[str, int]:
        return (session.get_bind().engine.url.render_as_string(), ident)

    def get(self, session: Session, ident: int) -> V | None:
        key = self._key(session, ident)
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, session: Session, ident: int, value: V) -> None:
        with self._lock:
            self._values[self._key(session, ident)] = value
            while len(self._values) > self._size:
                self._values.popitem(last=False)
