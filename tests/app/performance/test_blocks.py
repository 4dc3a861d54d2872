"""The grouping of a batch's records by (block, model version), which ingest runs per batch."""

from __future__ import annotations

import numpy as np

from app.performance.blocks import group, group_by_block, version_key


def test_group_by_block_is_the_plain_grouping_on_random_batches() -> None:
    rng = np.random.default_rng(20261203)
    for case in range(400):
        n = int(rng.integers(1, 60))
        blocks = rng.integers(0, 4, n).astype(np.int64)
        if case % 2:
            blocks.sort()  # count windows: numbers in order
        versions: list[str | None] = (
            [None] * n
            if case % 3 == 0
            else ["2026-11-01"] * n
            if case % 3 == 1
            else [str(rng.choice(["a", "b", ""])) for _ in range(n)]
        )
        plain = group(zip(blocks.tolist(), map(version_key, versions), strict=True))
        fast = group_by_block(blocks, versions)
        assert fast.keys() == plain.keys()
        for key, positions in plain.items():
            assert fast[key].tolist() == positions.tolist(), (case, key)


def test_one_block_and_version_is_the_whole_batch() -> None:
    grouped = group_by_block(np.array([7, 7, 7], dtype=np.int64), [None, None, None])
    assert list(grouped) == [(7, "")]
    assert grouped[(7, "")].tolist() == [0, 1, 2]
