"""POST /v1/models/{name}/feedback: ground truth attached to stored predictions by id."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.factories import create_model, create_model_with_reference, make_key, predictions

URL = "/v1/models/churn/feedback"


def labels(client: TestClient, model: str = "churn") -> dict[str, object]:
    items = client.get(f"/v1/models/{model}/predictions", params={"limit": 1000}).json()["items"]
    return {i["id"]: i["label"] for i in items}


def test_feedback_labels_predictions_and_lists_unknown_ids(client: TestClient) -> None:
    create_model_with_reference(client)
    batch = predictions(3)
    client.post("/v1/models/churn/predictions", json={"predictions": batch})
    body = {
        "feedback": [
            {"id": batch[0]["id"], "label": "churn"},
            {"id": batch[2]["id"], "label": "stay"},
            {"id": "never-seen", "label": "stay"},
        ]
    }
    r = client.post(URL, json=body)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 2
    assert r.json()["unknown_ids"] == ["never-seen"]
    assert labels(client) == {batch[0]["id"]: "churn", batch[1]["id"]: None, batch[2]["id"]: "stay"}


def test_the_latest_label_wins_and_repeats_are_harmless(client: TestClient) -> None:
    create_model_with_reference(client)
    [p] = predictions(1)
    client.post("/v1/models/churn/predictions", json=p)
    one = {"feedback": [{"id": p["id"], "label": "churn"}]}
    assert client.post(URL, json=one).json()["accepted"] == 1
    assert client.post(URL, json=one).json()["accepted"] == 1
    assert labels(client) == {p["id"]: "churn"}
    # two labels for one id in one batch: the last one counts
    both = {"feedback": [{"id": p["id"], "label": "churn"}, {"id": p["id"], "label": "stay"}]}
    assert client.post(URL, json=both).status_code == 202
    assert labels(client) == {p["id"]: "stay"}


def test_regression_labels_are_numbers(client: TestClient) -> None:
    create_model(client, name="price", task="regression", labels=None)
    url = "/v1/models/price"
    record = {"id": "h1", "features": {"age": 3}, "prediction": 250000.0}
    assert client.post(f"{url}/predictions", json=record).status_code == 202
    assert (
        client.post(f"{url}/feedback", json={"feedback": [{"id": "h1", "label": 262500}]}).json()[
            "accepted"
        ]
        == 1
    )
    assert labels(client, "price") == {"h1": 262500}
    for label in ("expensive", True):
        r = client.post(f"{url}/feedback", json={"feedback": [{"id": "h1", "label": label}]})
        assert r.status_code == 422, (label, r.text)
        assert r.json()["error"]["details"][0]["loc"] == ["feedback", 0, "label"]
    for token in ("NaN", "Infinity", "-Infinity"):
        r = client.post(
            f"{url}/feedback",
            content=f'{{"feedback": [{{"id": "h1", "label": {token}}}]}}'.encode(),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422, (token, r.text)
        assert r.json()["error"]["details"][0]["loc"] == ["feedback", 0, "label"]
    assert labels(client, "price") == {"h1": 262500}


def test_bad_feedback_is_422_naming_the_field_and_stores_nothing(client: TestClient) -> None:
    create_model_with_reference(client)
    batch = predictions(2)
    client.post("/v1/models/churn/predictions", json={"predictions": batch})
    good = {"id": batch[0]["id"], "label": "churn"}
    for body, loc in [
        ({"feedback": [good, {"id": batch[1]["id"], "label": "maybe"}]}, ["feedback", 1, "label"]),
        ({"feedback": [good, {"id": batch[1]["id"], "label": None}]}, ["feedback", 1, "label"]),
        ({"feedback": [good, {"label": "stay"}]}, ["feedback", 1, "id"]),
        ({"feedback": [good, {"id": "", "label": "stay"}]}, ["feedback", 1, "id"]),
        ({"feedback": [good, {"id": "a", "label": "stay", "note": "x"}]}, ["feedback", 1, "note"]),
        ({"feedback": [good, {"id": "a", "label": ["stay"]}]}, ["feedback", 1, "label"]),
        ({"feedback": []}, ["feedback"]),
        ({"feedback": good}, ["feedback"]),
        ({"labels": [good]}, ["feedback"]),
    ]:
        r = client.post(
            URL, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "validation_error"
        assert r.json()["error"]["details"][0]["loc"] == loc, (body, r.json())
    assert set(labels(client).values()) == {None}


def test_feedback_is_per_model_and_needs_ingest(client: TestClient) -> None:
    create_model_with_reference(client)
    create_model(client, name="other")
    [p] = predictions(1)
    client.post("/v1/models/other/predictions", json=p)
    r = client.post(URL, json={"feedback": [{"id": p["id"], "label": "stay"}]})
    assert r.json() == {"accepted": 0, "unknown_ids": [p["id"]], "exceptions": 0}
    review = make_key(client, "review")
    r = client.post(URL, json={"feedback": [{"id": p["id"], "label": "stay"}]}, headers=review)
    assert r.status_code == 403
    ingest = make_key(client, "ingest", name="model")
    r = client.post(
        "/v1/models/other/feedback",
        json={"feedback": [{"id": p["id"], "label": "stay"}]},
        headers=ingest,
    )
    assert r.json()["accepted"] == 1
