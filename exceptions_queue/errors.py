"""The queue's own errors: what went wrong with a ticket operation, and what to do.

They carry the stable ``code`` of the error shape of API.md; app/errors.py
renders them (404, 409, 422) exactly like the service's other errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class QueueError(Exception):
    """Base of every error of a queue operation."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class TicketNotFound(QueueError):
    """No such ticket (or it is gone)."""

    status_code = 404
    code = "not_found"


class TicketConflict(QueueError):
    """The ticket is not in a state that allows this: not yours, finished, lease expired..."""

    status_code = 409
    code = "conflict"


class InvalidInput(QueueError):
    """A label or a field the model or the ticket does not allow."""

    status_code = 422
    code = "validation_error"

    @classmethod
    def at(cls, loc: Sequence[str | int], message: str) -> InvalidInput:
        """One error at one field, ``loc`` as in API.md (``["labels", 0, "label"]``)."""
        return cls(message, details=[{"loc": list(loc), "msg": message}])
