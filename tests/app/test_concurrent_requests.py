"""Concurrent write requests through the HTTP stack: no deadlock, no double work.

FastAPI enters and leaves a request's unit of work on different worker threads;
a thread-owned lock held across it once deadlocked every writer on SQLite. This
drives 4 reviewers at once through the real request path on both databases.
"""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

from tests.factories import create_model_with_reference, make_key, predictions


def test_four_reviewers_claim_and_resolve_at_once(client: TestClient) -> None:
    create_model_with_reference(client)
    r = client.post(
        "/v1/models/churn/predictions", json={"predictions": predictions(120, confidence=0.3)}
    )
    assert r.status_code == 202
    assert r.json()["exceptions"] >= 120
    keys = [make_key(client, "review", name=f"reviewer-{i}") for i in range(4)]
    resolved: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def reviewer(headers: dict[str, str]) -> None:
        while True:
            claim = client.post(
                "/v1/tickets/claim", headers=headers, json={"kind": "low_confidence"}
            )
            if claim.status_code == 204:
                return
            if claim.status_code != 200:
                errors.append(claim.text)
                return
            ticket = claim.json()
            done = client.post(
                f"/v1/tickets/{ticket['id']}/resolve",
                headers=headers,
                json={"label": "stay", "lease_token": ticket["lease_token"]},
            )
            if done.status_code != 200:
                errors.append(done.text)
                return
            with lock:
                resolved.append(ticket["id"])

    threads = [threading.Thread(target=reviewer, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a reviewer is stuck: writers deadlocked"
    assert errors == []
    assert len(resolved) == len(set(resolved)) == 120
