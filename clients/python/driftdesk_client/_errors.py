"""Errors raised by `Client`."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DriftdeskConnectionError", "DriftdeskError"]


class DriftdeskError(Exception):
    """An error answer from driftdesk, parsed from its one error shape
    ``{"error": {"code", "message", "details"}}``.

    ``status`` is the HTTP status (0 when the service could not be reached),
    ``code`` the stable machine-readable code (``"validation_error"``,
    ``"not_found"``, ...), ``details`` what the server pointed at (for a 422,
    the path of the offending field, e.g. ``["predictions", 3, "features", "age"]``).
    ``str(error)`` is one line, fit for a command line.
    """

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(status, code, message, details)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        where = f" {json.dumps(self.details, default=str)}" if self.details else ""
        prefix = f"HTTP {self.status} " if self.status else ""
        return f"{prefix}{self.code}: {self.message}{where}"

    @classmethod
    def from_response(cls, status: int, text: str, reason: str = "") -> DriftdeskError:
        """Parse an error body; a body of another shape still gives a useful error."""
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return cls(
                status,
                str(error.get("code") or f"http_{status}"),
                str(error.get("message") or reason or f"HTTP {status}"),
                error.get("details"),
            )
        if isinstance(body, dict) and "detail" in body:  # a framework's default shape
            return cls(status, f"http_{status}", reason or f"HTTP {status}", body["detail"])
        message = " ".join(text.split())[:500] if text else (reason or f"HTTP {status}")
        return cls(status, f"http_{status}", message)


class DriftdeskConnectionError(DriftdeskError):
    """The service could not be reached (refused, timed out, TLS, DNS...); ``status`` is 0."""
