"""A database outage answers 503 with Retry-After, and the service recovers when it is back.

The app reaches a real PostgreSQL through a TCP proxy on 127.0.0.1 that the
test closes (every connection cut, the port refusing) and opens again: the
shared server itself is never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from app.db import Database, make_engine
from app.main import create_app
from tests.conftest import ADMIN_SECRET, fresh_database, make_settings
from tests.factories import create_model_with_reference, make_key, predictions


class LoopbackProxy:
    """Forwards 127.0.0.1:port to a target; ``cut()`` drops everything, ``restore()`` listens again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        assert self._listener is not None
        # shutdown wakes the blocked accept(): close() alone would leave the port listening
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied(
    _templates: dict[str, str], tmp_path: Path
) -> Iterator[tuple[LoopbackProxy, TestClient]]:
    with fresh_database("postgres", _templates, tmp_path, prefix="dd_outage") as url:
        real = make_url(url)
        proxy = LoopbackProxy((real.host or "127.0.0.1", real.port or 5432))
        proxy.restore()
        through = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        settings = make_settings(through)
        db = Database(make_engine(through, pool_size=2))
        app = create_app(settings, database=db)
        with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_SECRET}"}) as client:
            yield proxy, client
        if proxy._listener is None:
            proxy.restore()
        db.dispose()
        proxy.cut()


def test_an_outage_is_503_with_retry_after_and_leaks_nothing(
    proxied: tuple[LoopbackProxy, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    proxy, client = proxied
    create_model_with_reference(client)
    ingest = make_key(client, "ingest")
    batch = {"predictions": predictions(20, seed=3)}
    assert (
        client.post("/v1/models/churn/predictions", json=batch, headers=ingest).status_code == 202
    )
    assert client.get("/readyz").status_code == 200

    proxy.cut()
    caplog.set_level(logging.WARNING)
    for method, path, body in [
        ("POST", "/v1/models/churn/predictions", {"predictions": predictions(5, seed=4)}),
        ("GET", "/v1/models/churn", None),
        ("GET", "/v1/tickets", None),
        ("POST", "/v1/tickets/claim", {"model": "churn"}),
    ]:
        r = client.request(method, path, json=body)
        assert r.status_code == 503, (path, r.text)
        assert r.headers["retry-after"] == "5"
        assert r.json()["error"]["code"] == "service_unavailable"
        assert set(r.json()["error"]) == {"code", "message", "details"}
    ready = client.get("/readyz", headers={"Authorization": ""})
    assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
    assert ready.json()["error"] == {
        "code": "not_ready",
        "message": "database unreachable: see the server's log",
        "details": [],
    }
    for leak in (str(proxy.port), "127.0.0.1", "psycopg", "Operational", "postgres"):
        assert leak not in ready.text, leak
    # the operator's log says what happened
    assert any("database unavailable" in rec.getMessage() for rec in caplog.records)

    proxy.restore()
    again = {"predictions": predictions(5, seed=5)}
    r = client.post("/v1/models/churn/predictions", json=again, headers=ingest)
    assert r.status_code == 202, r.text
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/models/churn/predictions").json()["items"], "nothing lost"
