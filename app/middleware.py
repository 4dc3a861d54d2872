"""Request body limits, enforced before a byte of an oversized body is parsed."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge, error_body
from app.responses import JSON


class BodyLimit:
    """413 for bodies over the limit: at once from Content-Length, or while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    def _limit(self, scope: Scope) -> int:
        path: str = scope.get("path", "")
        return self.max_upload_bytes if path.endswith("/reference") else self.max_bytes

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
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(
                        f"request body is over the limit of {limit} bytes: send smaller batches"
                    )
            return message

        await self.app(scope, limited_receive, send)


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
