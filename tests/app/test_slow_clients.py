"""Slow and idle clients cannot hold a real `driftdesk serve`: raw sockets against the process.

A connection that sends part of its headers, part of a body, a body a byte at a
time, or nothing at all, gets 408 in the contract's error shape and is closed;
connections over the limit get 503 at once; the server keeps answering others
throughout. Timeouts are set to a second so the test takes seconds.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench._server import DriftdeskServer
from tests.conftest import ADMIN_SECRET

MAX_CONNECTIONS = 100


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DriftdeskServer]:
    folder = tmp_path_factory.mktemp("slow-clients")
    env = {
        "DRIFTDESK_DATABASE_URL": f"sqlite:///{folder / 'dd.db'}",
        "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": ADMIN_SECRET,
        "DRIFTDESK_HEADER_TIMEOUT_SECONDS": "1",
        "DRIFTDESK_BODY_READ_TIMEOUT_SECONDS": "1",
        "DRIFTDESK_BODY_MIN_BYTES_PER_SECOND": "1000",
        "DRIFTDESK_KEEP_ALIVE_SECONDS": "2",
        "DRIFTDESK_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    with DriftdeskServer(env=env, log=folder / "server.log", cwd=folder) as running:
        yield running


def connect(server: DriftdeskServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes the connection (or ``timeout`` passes)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except TimeoutError:
        pass
    except ConnectionResetError:
        return data, True
    return data, False


def error_of(response: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    """The first response on the connection: status, headers, its error object."""
    head, _, rest = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    body = rest[: int(headers["content-length"])]
    return status, headers, json.loads(body)["error"]


def post_head(length: int) -> bytes:
    return (
        "POST /v1/models/churn/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {ADMIN_SECRET}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def assert_answers(server: DriftdeskServer) -> None:
    assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200


def test_headers_that_stop_get_408_and_the_connection_closes(server: DriftdeskServer) -> None:
    with connect(server) as partial, connect(server) as silent:
        partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert_answers(server)
        data, closed = read_until_closed(partial, timeout=8)
        assert closed, data
        status, headers, error = error_of(data)
        assert status == 408 and error["code"] == "request_timeout", data
        assert headers["connection"] == "close"
        assert read_until_closed(silent, timeout=8) == (b"", True)  # closed, nothing to answer


def test_a_body_that_stops_gets_408_and_the_connection_closes(server: DriftdeskServer) -> None:
    with connect(server) as sock:
        sock.sendall(post_head(1000) + b'{"predictions": [')
        started = time.monotonic()
        data, closed = read_until_closed(sock, timeout=8)
        assert closed and time.monotonic() - started < 6, data
        status, headers, error = error_of(data)
        assert status == 408 and error["code"] == "request_timeout", data
        assert "17 bytes received" in str(error["message"])
        assert headers["connection"] == "close"


def test_a_body_sent_a_byte_at_a_time_gets_408(server: DriftdeskServer) -> None:
    with connect(server) as sock:
        sock.sendall(post_head(1000))
        sock.settimeout(0.2)
        data = b""
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            try:
                sock.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:  # a byte sent after the server closed
                break
            if not chunk:
                break
            data += chunk
        status, _, error = error_of(data)
        assert status == 408 and "too slowly" in str(error["message"]), data


def test_a_body_in_pieces_within_the_timeouts_is_served(server: DriftdeskServer) -> None:
    body = json.dumps({"predictions": [{"features": {"age": 1}}]}).encode()
    with connect(server) as sock:
        sock.sendall(post_head(len(body)) + body[:10])
        time.sleep(0.4)
        sock.sendall(body[10:])
        data, _ = read_until_closed(sock, timeout=3)
    status, _, error = error_of(data)
    assert status == 404 and error["code"] == "not_found", data  # no such model: it was read


def test_many_stalled_connections_are_closed_and_over_the_limit_refused(
    server: DriftdeskServer,
) -> None:
    socks = [connect(server) for _ in range(MAX_CONNECTIONS - 10)]
    try:
        for sock in socks[: len(socks) // 2]:  # half send part of a body, half nothing
            sock.sendall(post_head(1000) + b"{")
        assert_answers(server)  # while they stall, others are served
        socks += [connect(server) for _ in range(30)]  # 20 of these are over the limit
        outcomes = [read_until_closed(sock, timeout=10) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    statuses = [error_of(data)[0] if data else None for data, _ in outcomes]
    assert all(closed for _, closed in outcomes), statuses
    assert statuses.count(503) >= 20, statuses
    assert set(statuses) <= {408, 503, None}, statuses  # None: closed idle
    refused = next(data for data, _ in outcomes if data and error_of(data)[0] == 503)
    _, headers, error = error_of(refused)
    assert headers["retry-after"] == "1" and error["code"] == "service_unavailable"
    assert_answers(server)


def test_the_server_log_shows_no_errors(server: DriftdeskServer) -> None:
    assert "Traceback" not in server.output(), Path(server.log).read_text()[-3000:]
