"""A resolve notes its labels; the audited sums move in batches before any read.

Resolving a ticket used to move the audited sums in the reviewer's own
transaction (seven statements a resolve: the queue's throughput halved). Now it
notes the prediction (one insert), and the sums move before a read of the
model's performance, in the evaluator's step, and never twice.
"""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import Database
from app.performance import labels
from app.performance.incidents import run_due
from app.performance.tables import PerformanceLabel, PerformanceLabelChange
from app.settings import Settings
from tests.app.performance.helpers import (
    post,
    resolve_with_truth,
    setup_model,
    simulate,
    windows,
)
from tests.factories import make_key


def _resolve(client: TestClient, truth_of: dict[str, str], most: int) -> int:
    return resolve_with_truth(client, make_key(client, "review", name="ana"), truth_of, most=most)


def _count(db: Database, table: type) -> int:
    with db.session(readonly=True) as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_a_resolve_notes_and_a_read_moves_the_sums_once(client: TestClient, db: Database) -> None:
    setup_model(client, confidence_threshold=0.6, options={"audit_rate": 0.1})
    records, truth = simulate(1000, seed=11)
    post(client, records)
    done = _resolve(client, dict(zip((r["id"] for r in records), truth, strict=True)), 40)
    assert done == 40
    # noted, not yet moved: the reviewers' transactions did no more
    assert _count(db, PerformanceLabelChange) == 40
    assert _count(db, PerformanceLabel) == 0
    first = windows(client)[0]
    assert first["audited_labels"] == 40  # the read moved them first
    assert _count(db, PerformanceLabelChange) == 0
    assert _count(db, PerformanceLabel) == 40
    again = windows(client)[0]  # nothing pending: nothing moves twice
    assert again["metrics"]["accuracy"]["audited"] == first["metrics"]["accuracy"]["audited"]


def test_the_evaluator_moves_noted_labels(
    client: TestClient, db: Database, settings: Settings
) -> None:
    setup_model(client, confidence_threshold=0.6, options={"audit_rate": 0.1})
    records, truth = simulate(1000, seed=12)
    post(client, records)
    _resolve(client, dict(zip((r["id"] for r in records), truth, strict=True)), 25)
    run_due(db, settings)
    assert _count(db, PerformanceLabelChange) == 0
    assert _count(db, PerformanceLabel) == 25


def test_syncs_at_once_move_each_label_once(client: TestClient, db: Database) -> None:
    """Four processes reading at once (threads here, each with its own sessions): the
    model's lock and the delete that takes the noted changes let each move only once."""
    setup_model(client, confidence_threshold=0.6, options={"audit_rate": 0.1})
    records, truth = simulate(1000, seed=13)
    post(client, records)
    _resolve(client, dict(zip((r["id"] for r in records), truth, strict=True)), 60)
    moved: list[int] = []
    errors: list[BaseException] = []

    def sync() -> None:
        try:
            moved.append(labels.sync_all_pending(db))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sync) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sum(moved) == 60
    assert windows(client)[0]["audited_labels"] == 60
