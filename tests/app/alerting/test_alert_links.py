"""Links in alerts sent from flows start with the app's configured public URL.

The app is built with its own settings (``create_app(settings)``) whose
``public_url`` differs from the one the environment would give
(``DRIFTDESK_PUBLIC_URL`` points elsewhere), and the loops run as
``app.background`` runs them: each ``LOOPS`` step with the app's database and
settings. A flow that read the global settings, or a default, would send links
to the wrong host; every link a real webhook receiver gets is checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.loops import LOOPS
from app.main import create_app
from app.settings import Settings, get_settings
from tests.app.performance.helpers import feedback, setup_model, simulate
from tests.conftest import ADMIN_SECRET
from tests.factories import create_model_with_reference, predictions

from .conftest import Receiver, add_webhook, drain

BASE = "https://desk.example.test/driftdesk"
ELSEWHERE = "http://wrong-host.invalid:9999"


@pytest.fixture
def app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    monkeypatch.setenv("DRIFTDESK_PUBLIC_URL", ELSEWHERE)
    get_settings.cache_clear()  # the process's settings are cached: read them again
    assert get_settings().public_url == ELSEWHERE  # what a global read would find
    yield create_app(settings.model_copy(update={"public_url": BASE + "/"}))
    get_settings.cache_clear()


@pytest.fixture
def api(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_SECRET}"}) as c:
        yield c


def run_loop(app: FastAPI, name: str) -> int:
    """One step of a background loop, as app.background runs it."""
    [loop] = [loop for loop in LOOPS if loop.name == name]
    return loop.step(app.state.db, app.state.settings)


def sent_links(app: FastAPI, receiver: Receiver) -> dict[str, list[str]]:
    """Deliver what is due; each webhook message type received, with its links."""
    drain(app.state.db, app.state.settings)
    out: dict[str, list[str]] = {}
    for request in receiver.requests:
        payload: dict[str, Any] = json.loads(request.body)
        out.setdefault(payload["type"], []).extend(payload["data"]["links"].values())
    return out


def assert_on_base(links: dict[str, list[str]], *types: str) -> None:
    for kind in types:
        assert links.get(kind), f"no {kind} message with links: {sorted(links)}"
    for kind, urls in links.items():
        for url in urls:
            assert url.startswith(BASE + "/"), f"{kind}: {url} is not under {BASE}"
            assert "//" not in url.removeprefix("https://"), url


def test_a_drift_incident_links_to_the_configured_url(
    app: FastAPI, api: TestClient, http_receiver: Receiver
) -> None:
    create_model_with_reference(api)
    add_webhook(api, http_receiver)
    for seed, shift in ((11, 0.0), (12, 15.0)):
        batch = predictions(1000, seed=seed, prefix=f"w{seed}", age_shift=shift)
        for i in range(0, len(batch), 500):
            r = api.post("/v1/models/churn/predictions", json={"predictions": batch[i : i + 500]})
            assert r.status_code == 202, r.text
        run_loop(app, "evaluate")
    links = sent_links(app, http_receiver)
    assert_on_base(links, "drift.incident.opened")
    assert f"{BASE}/ui/models/churn" in links["drift.incident.opened"]


def test_a_performance_incident_links_to_the_configured_url(
    app: FastAPI, api: TestClient, http_receiver: Receiver
) -> None:
    setup_model(
        api,
        window={"kind": "count", "size": 500, "step": 500},
        performance={"metric": "accuracy", "min": 0.7},
        options={"incident_open_after": 2, "incident_of_last": 3, "incident_close_after": 2},
    )
    add_webhook(api, http_receiver)
    for i, shift in enumerate((0.0, 3.0, 3.0)):
        records, truth = simulate(500, seed=200 + i, concept_shift=shift, prefix=f"w{i}")
        r = api.post("/v1/models/churn/predictions", json={"predictions": records})
        assert r.status_code == 202, r.text
        feedback(api, records, truth)
        run_loop(app, "performance")
    links = sent_links(app, http_receiver)
    assert_on_base(links, "performance.degraded")
    assert f"{BASE}/ui/models/churn" in links["performance.degraded"]


def test_queue_alerts_and_the_retraining_notice_link_to_the_configured_url(
    app: FastAPI, api: TestClient, http_receiver: Receiver, settings: Settings
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"alert_queue_backlog": 2})
    create_model_with_reference(api, options={"retraining_ready_labels": 1})
    add_webhook(api, http_receiver)
    unsure = predictions(5, seed=3, prefix="unsure", confidence=0.3)
    r = api.post("/v1/models/churn/predictions", json={"predictions": unsure})
    assert r.status_code == 202, r.text
    assert run_loop(app, "alert-rules") == 1  # the backlog of five is over two
    ticket = api.post("/v1/tickets/claim", json={"kind": "low_confidence"}).json()
    r = api.post(
        f"/v1/tickets/{ticket['id']}/resolve",
        json={"label": "churn", "lease_token": ticket["lease_token"]},
    )
    assert r.status_code == 200, r.text
    links = sent_links(app, http_receiver)
    assert_on_base(links, "queue.backlog.exceeded", "training_data.ready")
    assert f"{BASE}/ui/queue?model=churn&status=open" in links["queue.backlog.exceeded"]
    assert f"{BASE}/v1/models/churn/training-data" in links["training_data.ready"]
