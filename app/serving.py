"""How `driftdesk serve` runs uvicorn: slow or idle clients cannot hold the server.

uvicorn gives each connection no deadline until its first request's headers are
complete, and none for a request's body; a client that sends part of a request
and stops holds a connection (a file descriptor, a parser, a task) forever.
Here:

- **header deadline**: every request's headers must be complete within
  ``header_timeout_seconds`` of the connection opening (or of the previous
  response); else the server answers 408 and closes the connection (an idle
  connection that sent nothing is closed without an answer);
- **connection limit**: over ``max_connections`` open connections in a process,
  a new connection gets 503 with ``Retry-After`` at once and is closed;
- **body timeouts** (:class:`app.middleware.BodyLimit`): the app waits at most
  ``body_read_timeout_seconds`` for each piece of a body, and a body must keep
  an average of ``body_min_bytes_per_second`` once that long has passed; else
  408 in the contract's error shape, and the connection is closed;
- idle keep-alive connections close after ``keep_alive_seconds`` (uvicorn).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from app.errors import error_body

try:  # uvicorn's faster parser, used when installed (uvicorn[standard])
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a dependency of uvicorn[standard]
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


def _raw_response(status: str, code: str, message: str, extra: str = "") -> bytes:
    body = json.dumps(error_body(code, message)).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


class SlowClientGuard:
    """Mixin for uvicorn's HTTP protocols: a header deadline and a connection limit.

    Configured once per process by :func:`configure` (class attributes: uvicorn
    builds one protocol object per connection and passes no extra arguments).
    """

    header_timeout: float = 10.0
    max_connections: int = 1000

    # provided by uvicorn's protocol classes
    connections: set[Any]
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any

    _header_timer: asyncio.TimerHandle | None = None
    _bytes_waiting = 0  # bytes of the next request received while its headers are due

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if len(self.connections) > self.max_connections:
            self.transport.write(
                _raw_response(
                    "503 Service Unavailable",
                    "service_unavailable",
                    f"over {self.max_connections} open connections: retry shortly",
                    "retry-after: 1\r\n",
                )
            )
            self.transport.close()
            return
        self._await_headers()

    def _await_headers(self) -> None:
        self._cancel_header_timer()
        self._bytes_waiting = 0
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _request_in_flight(self) -> bool:
        return (self.cycle is not None and not self.cycle.response_complete) or bool(
            getattr(self, "pipeline", ())
        )

    def _headers_late(self) -> None:
        self._header_timer = None
        # A request whose headers arrived is the body timeout's business, not this one's.
        if self.transport.is_closing() or self._request_in_flight():
            return
        if not self._bytes_waiting:  # an idle connection: close it quietly
            self.transport.close()
            return
        self.transport.write(
            _raw_response(
                "408 Request Timeout",
                "request_timeout",
                f"the request's headers did not arrive within {self.header_timeout:g} s",
            )
        )
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._bytes_waiting += len(data)
        super().data_received(data)  # type: ignore[misc]
        if self._header_timer is not None and self._request_in_flight():
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing() and not self._request_in_flight():
            self._await_headers()  # the next request's headers

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)  # type: ignore[misc]


class GuardedH11Protocol(SlowClientGuard, H11Protocol):
    pass


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(SlowClientGuard, HttpToolsProtocol):
        pass

    PROTOCOL: type[asyncio.Protocol] = GuardedHttpToolsProtocol
else:  # pragma: no cover
    PROTOCOL = GuardedH11Protocol


PROTOCOL_PATH = f"{__name__}:PROTOCOL"
"""What to pass as uvicorn's ``http`` (a name: workers import it themselves)."""


def configure(*, header_timeout: float, max_connections: int) -> None:
    """Set this process's limits (before it serves)."""
    SlowClientGuard.header_timeout = header_timeout
    SlowClientGuard.max_connections = max_connections
