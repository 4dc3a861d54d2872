"""Standard Webhooks signatures (https://www.standardwebhooks.com/, symmetric ``v1``).

A secret is ``whsec_`` followed by the base64 of 24 to 64 random bytes. A
delivery carries three headers:

- ``webhook-id``: the delivery's id, the same on every retry (the receiver's
  idempotency key);
- ``webhook-timestamp``: integer Unix seconds of this attempt;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
  one per secret, space-separated, so a channel can carry the old and the new
  secret while a receiver rotates.

>>> secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
>>> sign(secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330,
...      body=b'{"test": 2432232314}')
'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _random
import time
from collections.abc import Mapping, Sequence
from typing import Final

SECRET_PREFIX: Final = "whsec_"
MIN_SECRET_BYTES: Final = 24
MAX_SECRET_BYTES: Final = 64
DEFAULT_TOLERANCE_SECONDS: Final = 5 * 60

HEADER_ID: Final = "webhook-id"
HEADER_TIMESTAMP: Final = "webhook-timestamp"
HEADER_SIGNATURE: Final = "webhook-signature"

# The id is part of the signed string "{id}.{timestamp}.{body}": a full stop in
# it would let one (id, timestamp) pair pass for another.
_MSG_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")

Secrets = str | Sequence[str]


class SignatureError(ValueError):
    """A delivery whose headers or signature do not verify."""


def generate_secret(nbytes: int = 32) -> str:
    """A new ``whsec_`` secret of ``nbytes`` random bytes.

    >>> s = generate_secret()
    >>> s.startswith("whsec_"), len(secret_key(s))
    (True, 32)
    """
    if not MIN_SECRET_BYTES <= nbytes <= MAX_SECRET_BYTES:
        raise ValueError(f"a secret has {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(nbytes)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret; ``ValueError`` if it is not one.

    The message never contains the secret itself, so it is safe to show.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a signing secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a signing secret is whsec_ followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"a signing secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, "
            f"this one {len(key)}"
        )
    return key


def _secret_list(secrets: Secrets) -> list[str]:
    listed = [secrets] if isinstance(secrets, str) else list(secrets)
    if not listed:
        raise ValueError("at least one signing secret is needed")
    return listed


def validate_webhook_id(msg_id: str) -> None:
    """``ValueError`` unless ``msg_id`` can be a ``webhook-id`` (no full stop, 1-128 chars)."""
    if not _MSG_ID.match(msg_id):
        raise ValueError("a webhook id is 1 to 128 characters of [A-Za-z0-9_-]")


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secrets: Secrets, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,`` signature per secret, space-separated."""
    validate_webhook_id(msg_id)
    keys = [secret_key(s) for s in _secret_list(secrets)]
    return " ".join(
        "v1," + base64.b64encode(_signature(key, msg_id, timestamp, body)).decode("ascii")
        for key in keys
    )


def signature_headers(
    secrets: Secrets, *, msg_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (``timestamp`` defaults to now)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(ts),
        HEADER_SIGNATURE: sign(secrets, msg_id=msg_id, timestamp=ts, body=body),
    }


def verify(
    secrets: Secrets,
    *,
    body: bytes,
    headers: Mapping[str, str],
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Check a received delivery; raise :class:`SignatureError` unless it is authentic.

    Passes when any ``v1`` signature in the header matches any of ``secrets``
    (compared in constant time) and the timestamp is within
    ``tolerance_seconds`` of ``now``. Other signature versions are skipped.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        msg_id = lowered[HEADER_ID]
        raw_timestamp = lowered[HEADER_TIMESTAMP]
        header = lowered[HEADER_SIGNATURE]
    except KeyError as missing:
        raise SignatureError(f"missing header {missing.args[0]}") from None
    if not _MSG_ID.match(msg_id):
        raise SignatureError("malformed webhook-id")
    if not raw_timestamp.isascii() or not raw_timestamp.isdigit():
        raise SignatureError("webhook-timestamp is not integer Unix seconds")
    timestamp = int(raw_timestamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError("webhook-timestamp is outside the tolerance")
    expected = [_signature(secret_key(s), msg_id, timestamp, body) for s in _secret_list(secrets)]
    for entry in header.split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # Check every expected value (no early exit on the secret list) so the
        # time taken does not reveal which secret matched.
        matched = False
        for value in expected:
            matched |= hmac.compare_digest(value, candidate)
        if matched:
            return
    raise SignatureError("no matching signature")
