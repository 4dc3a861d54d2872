"""Reading windows: decoded parts are cached by their immutable rows, and stay right."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from app.performance import service
from monitors.performance import AuditSums, audit_population
from tests.app.performance.helpers import feedback, post, setup_model, simulate, windows


def test_the_decoded_part_cache_keeps_to_its_byte_budget() -> None:
    cache = service._DecodedParts(max_bytes=3_000)
    sums = audit_population(np.array(["flagged", "unflagged"]))
    size = service._nbytes(sums)
    assert 500 < size < 1_000
    for i in range(10):
        cache.put(("db", 1, i), sums)
    assert cache.get(("db", 1, 0)) is None  # the oldest went first
    assert cache.get(("db", 1, 9)) is sums
    kept = [i for i in range(10) if cache.get(("db", 1, i)) is not None]
    assert len(kept) * size <= 3_000 and kept[-1] == 9
    cache.clear()
    assert cache.get(("db", 1, 9)) is None
    assert isinstance(sums, AuditSums)


def test_a_cached_read_sees_new_labels_and_compaction(client: TestClient) -> None:
    """The second read takes its parts from the cache; parts added later (labels) are
    read, never a stale sum (compaction's new rows: test_compaction_keeps_every_window...)."""
    setup_model(client)
    records, truth = simulate(2000, seed=3)
    post(client, records)
    first = windows(client)
    assert windows(client) == first  # from the cache: the same
    feedback(client, records[1000:1300], truth[1000:1300])
    after = windows(client)
    assert after[0]["metrics"]["accuracy"]["realized"]["n"] == 300
    assert first[0]["metrics"]["accuracy"]["realized"] is None
    assert after[1] == first[1]
