"""A real loopback HTTP server standing in for driftdesk, told what to answer."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

KEY = "dd_test_secret"


@dataclass
class Answer:
    """What the fake answers to the next ingest POST.

    ``close``: drop the connection without answering (after storing the batch
    when ``store``). Otherwise a ``status`` with ``headers`` and a JSON ``body``.
    """

    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    close: bool = False
    store: bool = False


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    def ids(self) -> list[str]:
        payload = self.json()
        key = "predictions" if "predictions" in payload else "feedback"
        return [record["id"] for record in payload[key]]


Reply = tuple[int, dict[str, str], bytes]


class FakeDriftdesk:
    """Ingest endpoints behave like the contract (202 with accepted/duplicates,
    422 naming a record whose features contain "poison", nothing stored from a
    rejected batch); ``script`` overrides the next answers; ``handler`` answers
    every other request (for `Client` tests).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.script: deque[Answer] = deque()
        self.requests: list[Seen] = []
        self.stored: dict[str, list[Any]] = {"predictions": [], "feedback": []}
        self.handler: Callable[[Seen], Reply] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._sockets: set[socket.socket] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    key = KEY

    def then(self, status: int = 202, **options: Any) -> FakeDriftdesk:
        """Script the answer to the next ingest POST (see `Answer`)."""
        with self.lock:
            self.script.append(Answer(status, **options))
        return self

    def ingest_requests(self, kind: str = "predictions") -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith(kind)]

    def stored_ids(self, kind: str = "predictions") -> list[str]:
        with self.lock:
            return [record["id"] for record in self.stored[kind]]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                with fake.lock:
                    fake.requests.append(seen)
                reply = fake._answer(seen)
                if reply is None:
                    self.close_connection = True
                    return
                status, headers, payload = reply
                self.send_response(status)
                headers.setdefault("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle  # noqa: N815

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def process_request(self, request: Any, client_address: Any) -> None:
                with fake.lock:
                    fake._sockets.add(request)
                super().process_request(request, client_address)

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        """Stop listening and cut every open connection (the service is down)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with self.lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _answer(self, seen: Seen) -> Reply | None:
        kind = seen.path.rsplit("/", 1)[-1]
        if seen.method != "POST" or kind not in ("predictions", "feedback"):
            if self.handler is None:
                return 404, {}, _error("not_found", "no such route")
            return self.handler(seen)
        if seen.headers.get("authorization") != f"Bearer {KEY}":
            return 401, {}, _error("unauthorized", "missing or unknown API key")
        with self.lock:
            answer = self.script.popleft() if self.script else Answer()
        if answer.close:
            if answer.store:
                self._store(kind, seen.json()[kind])
            return None
        if answer.status != 202:
            body = answer.body if answer.body is not None else {"error": {"code": "x"}}
            return answer.status, dict(answer.headers), json.dumps(body).encode()
        records = seen.json()[kind]
        for index, record in enumerate(records):
            if "poison" in record.get("features", {}):
                return (
                    422,
                    {},
                    _error("validation_error", "bad feature", [kind, index, "features", "poison"]),
                )
        accepted, duplicates = self._store(kind, records)
        reply = {"accepted": accepted, "duplicates": duplicates, "exceptions": 0}
        return 202, {}, json.dumps(reply).encode()

    def _store(self, kind: str, records: list[Any]) -> tuple[int, int]:
        accepted = duplicates = 0
        with self.lock:
            known = {record["id"] for record in self.stored[kind]}
            for record in records:
                if record["id"] in known:
                    duplicates += 1
                else:
                    known.add(record["id"])
                    self.stored[kind].append(record)
                    accepted += 1
        return accepted, duplicates


def _error(code: str, message: str, details: Any = None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()


@pytest.fixture
def fake() -> Iterator[FakeDriftdesk]:
    server = FakeDriftdesk()
    server.start()
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def start_fake() -> Iterator[Callable[[int], FakeDriftdesk]]:
    """Start a fake on a given port (a service coming back up)."""
    started: list[FakeDriftdesk] = []

    def start(port: int) -> FakeDriftdesk:
        server = FakeDriftdesk()
        server.port = port
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def down_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    return free_port()


@pytest.fixture
def make_monitor() -> Iterator[Callable[..., Any]]:
    """Build Monitors with fast test timings; every one is closed afterwards."""
    from driftdesk_client import Monitor

    made: list[Monitor] = []

    def make(url: str, **options: Any) -> Monitor:
        settings: dict[str, Any] = {
            "batch_size": 10,
            "flush_interval": 60.0,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "timeout": 2.0,
        }
        settings.update(options)
        monitor = Monitor(url, KEY, settings.pop("model", "churn"), **settings)
        made.append(monitor)
        return monitor

    yield make
    for monitor in made:
        monitor.close(timeout=0.5)


@pytest.fixture
def api_key() -> str:
    """The key the fakes accept."""
    return KEY
