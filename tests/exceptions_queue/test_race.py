"""Eight reviewers claim from one queue at once, each thread with its own sessions."""

from __future__ import annotations

import threading
from collections import Counter

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import Database
from exceptions_queue import service
from exceptions_queue.tables import Label, Ticket, TicketEvent
from storage.base import utcnow
from tests.exceptions_queue.helpers import seed

THREADS = 8
TICKETS = 120


def test_no_ticket_is_held_twice_and_each_is_finished_once(
    client: TestClient, db: Database
) -> None:
    seed(client, TICKETS)
    claims: list[tuple[int, str]] = []
    finished: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def reviewer(n: int) -> None:
        who = service.Actor(key_id=f"r{n}", name=f"reviewer {n}")
        start.wait()
        try:
            while True:
                with db.session() as s:
                    t = service.claim(s, actor=who, now=utcnow())
                    if t is None:
                        return
                    ticket_id, token = t.id, t.lease_token
                with lock:
                    claims.append((ticket_id, who.key_id))
                with db.session() as s:
                    if ticket_id % 3:
                        service.resolve(
                            s,
                            ticket_id=ticket_id,
                            actor=who,
                            lease_token=token,
                            labels=[service.LabelIn("churn")],
                            note=None,
                            now=utcnow(),
                        )
                    else:
                        service.dismiss(
                            s,
                            ticket_id=ticket_id,
                            actor=who,
                            lease_token=token,
                            reason="race",
                            now=utcnow(),
                        )
                with lock:
                    finished.append(ticket_id)
        except BaseException as exc:  # surfaced below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=reviewer, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    held = Counter(ticket_id for ticket_id, _ in claims)
    assert len(held) == TICKETS and set(held.values()) == {1}, "a ticket was claimed twice"
    assert sorted(finished) == sorted(held)
    assert len({who for _, who in claims}) > 1, "the reviewers did not run concurrently"
    with db.session(readonly=True) as s:
        statuses = Counter(s.scalars(select(Ticket.status)))
        per_ticket = Counter(
            s.scalars(
                select(TicketEvent.ticket_id).where(TicketEvent.action.in_(["resolve", "dismiss"]))
            )
        )
        labels = s.scalar(select(func.count()).select_from(Label))
    assert statuses == {
        "resolved": sum(1 for i in held if i % 3),
        "dismissed": sum(1 for i in held if not i % 3),
    }
    assert set(per_ticket.values()) == {1} and len(per_ticket) == TICKETS
    assert labels == statuses["resolved"]
