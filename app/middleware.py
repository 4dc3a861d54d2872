"""Request body limits, enforced before a byte of an oversized body is parsed.

Size: 413 at once from ``Content-Length``, or while the body streams in. Time:
a client that stops sending a body it started (or trickles it) gets 408 and
its connection is closed (see :mod:`app.serving` for the headers' deadline).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge, RequestTimeout, error_body
from app.responses import JSON


class BodyLimit:
    """413 for bodies over the limit; 408 for bodies that stop or crawl.

    ``read_timeout``: the longest wait for the next piece of a body.
    ``min_rate``: bytes per second a body must average over the time spent
    waiting for it, once that time passes ``read_timeout`` (a client sending a
    byte now and then would otherwise hold the request forever). Time the app
    spends between reads is not the client's and is not counted.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        max_upload_bytes: int,
        read_timeout: float = 30.0,
        min_rate: float = 1024.0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes
        self.read_timeout = read_timeout
        self.min_rate = min_rate

    def _limit(self, scope: Scope) -> int:
        """File uploads of a reference may be large (read a chunk of rows at a time);
        every JSON body, a reference's too, has the ordinary limit."""
        path: str = scope.get("path", "")
        if path.endswith("/reference"):
            for name, value in scope.get("headers") or ():
                if name == b"content-type" and value.startswith(b"multipart/form-data"):
                    return self.max_upload_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            response = JSON(
                error_body(
                    PayloadTooLarge.code,
                    f"request body of {int(length)} bytes is over the limit of {limit} bytes: "
                    "send smaller batches",
                ),
                status_code=413,
            )
            await response(scope, receive, send)
            return
        body = _LimitedBody(self, receive, limit)
        tracked = _TrackedSend(send)
        try:
            await self.app(scope, body.receive, tracked.send)
        except (PayloadTooLarge, RequestTimeout) as exc:
            # raised where no route's error handler sees it (another middleware's read)
            if tracked.started:
                raise
            headers = dict(exc.headers)
            await JSON(
                error_body(exc.code, exc.message), status_code=exc.status_code, headers=headers
            )(scope, receive, send)

    def _check_rate(self, received: int, elapsed: float) -> None:
        if received < self.min_rate * elapsed:
            raise RequestTimeout(
                f"the request body arrives too slowly: {received} bytes in {elapsed:.0f} s, "
                f"under the minimum of {self.min_rate:g} bytes per second"
            )


class _LimitedBody:
    """A request's ``receive`` that counts the body against its limit and its rate."""

    def __init__(self, limits: BodyLimit, receive: Receive, limit: int) -> None:
        self.limits = limits
        self._receive = receive
        self.limit = limit
        self.received = 0
        self.waited = 0.0
        self.complete = False

    async def receive(self) -> Message:
        if self.complete:  # the body is in: what follows is a disconnect, wait as long as it takes
            return await self._receive()
        timeout = self.limits.read_timeout
        if self.waited >= timeout:
            self.limits._check_rate(self.received, self.waited)
        start = time.monotonic()
        try:
            message: dict[str, Any] = dict(await asyncio.wait_for(self._receive(), timeout))
        except TimeoutError:
            raise RequestTimeout(
                f"no part of the request body arrived for {timeout:g} s "
                f"({self.received} bytes received): send the whole body without pausing"
            ) from None
        finally:
            self.waited += time.monotonic() - start
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise PayloadTooLarge(
                    f"request body is over the limit of {self.limit} bytes: send smaller batches"
                )
            self.complete = not message.get("more_body", False)
        else:
            self.complete = True
        return message


class _TrackedSend:
    """A ``send`` that knows whether the response has started."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def send(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


_FORM = b"application/x-www-form-urlencoded"
_JSON_START = b"{["


class JsonByDefault:
    """API bodies that are JSON are read as JSON whatever ``content-type`` says is absent.

    ``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``, and a bare
    HTTP client may send no content type at all; no API route takes a form, so
    a body that starts with ``{`` or ``[`` is taken for what it is. Multipart
    uploads and explicit types (JSON, CSV, ...) pass untouched. The API
    authenticates by header, never by cookie, so this opens no cross-site form
    posts to it.
    """

    def __init__(self, app: ASGIApp, *, prefix: str = "/v1/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
        ctype = next((v for k, v in headers if k == b"content-type"), None)
        if ctype is not None and ctype.split(b";")[0].strip().lower() != _FORM:
            await self.app(scope, receive, send)
            return
        # peek at the body's first non-blank byte, keeping what was read to replay it
        buffered: list[Message] = []
        first = b""
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            first = message.get("body", b"").lstrip()[:1]
            if first or not message.get("more_body", False):
                break
        if first and first in _JSON_START:
            headers = [(k, v) for k, v in headers if k != b"content-type"]
            headers.append((b"content-type", b"application/json"))
            scope = {**scope, "headers": headers}

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)
