"""A real `driftdesk worker` killed (SIGKILL) between sending a delivery and marking it.

The receiver records the first request and never answers, so the worker is
inside its send when it dies: the delivery is ``sending`` under a lease nobody
will mark. A restarted worker waits for the lease to run out and sends it again
with the same ``webhook-id``; nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.alerting import outbox
from app.alerting.tables import AlertDelivery
from app.db import Database

from .conftest import Receiver, Reply, add_webhook

DRIFTDESK = Path(sys.executable).with_name("driftdesk")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def start_worker(db_url: str, tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "DRIFTDESK_DATABASE_URL": db_url,
        "DRIFTDESK_ALLOW_PRIVATE_TARGETS": "true",
        "DRIFTDESK_LOG_FORMAT": "text",
        "DRIFTDESK_SQLITE_SYNCHRONOUS": "NORMAL",
        "DRIFTDESK_DISPATCH_INTERVAL_SECONDS": "0.1",
        "DRIFTDESK_ALERT_DISPATCH_CONCURRENCY": "1",
        # a short lease (the send timeout + 1 s): a restarted worker takes the orphan over soon
        "DRIFTDESK_ALERT_LEASE_SECONDS": "2",
        "DRIFTDESK_ALERT_SEND_TIMEOUT_SECONDS": "3",
        "DRIFTDESK_SMTP_TIMEOUT_SECONDS": "1",
        "DRIFTDESK_EVALUATE_INTERVAL_SECONDS": "60",
        "DRIFTDESK_ALERT_RULES_INTERVAL_SECONDS": "60",
        "DRIFTDESK_LEASE_REAPER_INTERVAL_SECONDS": "60",
    }

    def start(name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [str(DRIFTDESK), "worker"], env=env, cwd=tmp_path, stdout=log, stderr=log
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def deliveries(db: Database) -> list[AlertDelivery]:
    with db.session(readonly=True) as session:
        return list(session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


@pytest.mark.slow
def test_a_worker_killed_between_send_and_mark_loses_nothing(
    client: TestClient,
    db: Database,
    http_receiver: Receiver,
    start_worker: Callable[[str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    add_webhook(client, http_receiver)
    now = dt.datetime.now(dt.UTC)
    with db.session() as session:
        for model in ("churn", "fraud", "credit"):
            outbox.fire(
                session,
                outbox.AlertSpec(
                    rule="drift.incident",
                    subject=model,
                    episode="1",
                    severity="critical",
                    title=f"Drift on {model}",
                    summary="-",
                    model_name=model,
                ),
                now=now,
            )
    first, second, third = deliveries(db)
    http_receiver.answer(Reply(hang=True))  # received, never answered

    worker = start_worker("worker-1")
    wait_for(lambda: len(http_receiver.requests) == 1, "the first send")
    worker.kill()  # SIGKILL: between the send and the mark
    worker.wait(timeout=10)
    assert worker.returncode == -9
    [orphan] = [d for d in deliveries(db) if d.id == first.id]
    assert orphan.status == "sending" and orphan.attempts == 1 and orphan.lease_token
    assert http_receiver.requests[0].headers["webhook-id"] == first.webhook_id

    start_worker("worker-2")
    wait_for(
        lambda: all(d.status == "delivered" for d in deliveries(db)),
        "every delivery delivered (logs in " + str(tmp_path) + ")",
    )
    by_id: dict[str, list[bytes]] = {}
    for request in http_receiver.requests:
        by_id.setdefault(request.headers["webhook-id"], []).append(request.body)
    assert set(by_id) == {first.webhook_id, second.webhook_id, third.webhook_id}  # nothing lost
    assert len(by_id[first.webhook_id]) == 2  # at least once: the orphan was sent again
    assert all(len(set(bodies)) == 1 for bodies in by_id.values())  # each copy the same message
    [resent] = [d for d in deliveries(db) if d.id == first.id]
    assert resent.attempts == 2
