from fastapi.testclient import TestClient

from tests.factories import create_model_with_reference, predictions


def test_post_and_read_back(client: TestClient) -> None:
    create_model_with_reference(client)
    r = client.post("/v1/models/churn/predictions", json={"predictions": predictions(10)})
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 10, "duplicates": 0, "exceptions": 0}
    r = client.get("/v1/models/churn/predictions")
    assert r.status_code == 200
    assert len(r.json()["items"]) == 10
