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
