"""training-data: ground truth from /feedback beside human labels, each with source and weight."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.app.tickets.test_training import read
from tests.exceptions_queue.helpers import pin_ingest_clock, post, seed
from tests.factories import make_key


def _resolve_all(client: TestClient, who: dict[str, str], label: str = "churn") -> list[int]:
    done = []
    while True:
        r = client.post("/v1/tickets/claim", headers=who)
        if r.status_code == 204:
            return done
        t = r.json()
        r = client.post(f"/v1/tickets/{t['id']}/resolve", headers=who, json={"label": label})
        assert r.status_code == 200, r.text
        done.append(t["id"])


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_feedback_and_labels_with_source_and_weight(
    client: TestClient, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_ingest_clock(monkeypatch)
    seed(client, 0, ticket_budget_per_hour=5)
    post(client, 8, prefix="a")
    post(client, 8, prefix="b")
    monkeypatch.undo()  # the feedback below comes after the reviews
    probability = {
        t["prediction_id"]: t["inclusion_probability"]
        for t in client.get("/v1/tickets", params={"limit": 100}).json()["items"]
    }
    assert probability and all(0 < p < 1 for p in probability.values())  # drawn by value
    ana = make_key(client, "review", name="ana")
    assert len(_resolve_all(client, ana)) == len(probability)
    r = client.post(
        "/v1/models/churn/feedback",
        json={"feedback": [{"id": "a-1-0", "label": "stay"}, {"id": "b-1-7", "label": "churn"}]},
    )
    assert r.status_code == 202, r.text
    rows = read(client, fmt)
    human = [x for x in rows if x["source"] == "review"]
    feedback = [x for x in rows if x["source"] == "feedback"]
    assert len(human) == len(probability) and len(feedback) == 2
    for x in human:
        assert float(x["weight"]) == pytest.approx(1 / probability[x["prediction_id"]], rel=1e-6)
    assert {x["prediction_id"]: x["label"] for x in feedback} == {
        "a-1-0": "stay",
        "b-1-7": "churn",
    }
    for x in feedback:
        assert float(x["weight"]) == 1.0
        assert x["label_id"] in (None, "")
        assert x["ticket_id"] in (None, "")
    # oldest label first: the feedback came after every review
    assert [x["source"] for x in rows[-2:]] == ["feedback", "feedback"]


def test_feedback_respects_since_and_until(client: TestClient) -> None:
    seed(client, 3)
    r = client.post(
        "/v1/models/churn/feedback", json={"feedback": [{"id": "req-1-0", "label": "stay"}]}
    )
    assert r.status_code == 202
    cut = client.get("/v1/models/churn/training-data").headers["X-Driftdesk-Until"]
    r = client.post(
        "/v1/models/churn/feedback", json={"feedback": [{"id": "req-1-1", "label": "stay"}]}
    )
    assert [x["prediction_id"] for x in read(client, "jsonl", until=cut)] == ["req-1-0"]
    assert [x["prediction_id"] for x in read(client, "jsonl", since=cut)] == ["req-1-1"]
    # feedback sent again replaces the label (and its time): one row per prediction
    r = client.post(
        "/v1/models/churn/feedback", json={"feedback": [{"id": "req-1-0", "label": "churn"}]}
    )
    rows = read(client, "jsonl")
    assert [(x["prediction_id"], x["label"]) for x in rows] == [
        ("req-1-1", "stay"),
        ("req-1-0", "churn"),
    ]
