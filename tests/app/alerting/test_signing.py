"""Standard Webhooks signing, checked against a second implementation written from the spec.

The reference below follows the spec's text, not the code under test: strip
``whsec_``, base64-decode the rest as the key, HMAC-SHA256 over
``"{webhook-id}.{webhook-timestamp}.{body}"``, base64 the digest, and accept if
any space-separated ``v1,<sig>`` entry equals it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from app.alerting import signing

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
# The value the standard-webhooks reference libraries produce for these inputs.
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def reference_signatures(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def reference_accepts(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = reference_signatures(
        secret, headers["webhook-id"], headers["webhook-timestamp"], body
    )
    for entry in headers["webhook-signature"].split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


def test_sign_matches_the_published_vector() -> None:
    assert (
        signing.sign(SPEC_SECRET, msg_id=SPEC_ID, timestamp=SPEC_TIMESTAMP, body=SPEC_BODY)
        == SPEC_SIGNATURE
    )
    assert (
        "v1," + reference_signatures(SPEC_SECRET, SPEC_ID, str(SPEC_TIMESTAMP), SPEC_BODY)
        == SPEC_SIGNATURE
    )


def test_headers_verify_with_the_reference_implementation() -> None:
    secret = signing.generate_secret()
    body = '{"type":"drift.incident.opened","data":{"title":"Dérive ✓"}}'.encode()
    headers = signing.signature_headers(secret, msg_id="dlv_01HXYZ", body=body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "dlv_01HXYZ"
    assert headers["webhook-timestamp"].isdigit()
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert reference_accepts(secret, headers, body)
    assert not reference_accepts(secret, headers, body + b" ")
    assert not reference_accepts(signing.generate_secret(), headers, body)


def test_rotation_sends_one_signature_per_secret() -> None:
    old, new = signing.generate_secret(), signing.generate_secret()
    body = b"{}"
    headers = signing.signature_headers([new, old], msg_id="dlv_1", body=body, timestamp=1700000000)
    entries = headers["webhook-signature"].split(" ")
    assert len(entries) == 2
    assert all(entry.startswith("v1,") for entry in entries)
    # A receiver that knows only one of the two secrets accepts either way.
    assert reference_accepts(old, headers, body)
    assert reference_accepts(new, headers, body)
    assert not reference_accepts(signing.generate_secret(), headers, body)


def test_generated_secrets_are_whsec_base64_of_random_bytes() -> None:
    first, second = signing.generate_secret(), signing.generate_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert len(signing.secret_key(signing.generate_secret(24))) == 24
    with pytest.raises(ValueError, match="24 to 64"):
        signing.generate_secret(16)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with"),
        ("whsec_not base64!", "base64"),
        ("whsec_" + base64.b64encode(b"x" * 16).decode(), "24 to 64"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64"),
    ],
)
def test_malformed_secrets_are_refused_without_echoing_them(secret: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        signing.secret_key(secret)
    assert secret.removeprefix("whsec_") not in str(caught.value)


def test_ids_that_would_make_the_signed_string_ambiguous_are_refused() -> None:
    with pytest.raises(ValueError, match="webhook id"):
        signing.sign(SPEC_SECRET, msg_id="a.b", timestamp=1, body=b"")
    with pytest.raises(ValueError, match="webhook id"):
        signing.sign(SPEC_SECRET, msg_id="", timestamp=1, body=b"")


class TestVerify:
    def headers(self, **overrides: str) -> dict[str, str]:
        values = {
            "webhook-id": SPEC_ID,
            "webhook-timestamp": str(SPEC_TIMESTAMP),
            "webhook-signature": SPEC_SIGNATURE,
        }
        values.update(overrides)
        return values

    def test_accepts_the_published_vector(self) -> None:
        signing.verify(SPEC_SECRET, body=SPEC_BODY, headers=self.headers(), now=SPEC_TIMESTAMP)

    def test_header_names_are_case_insensitive(self) -> None:
        headers = {k.title(): v for k, v in self.headers().items()}
        signing.verify(SPEC_SECRET, body=SPEC_BODY, headers=headers, now=SPEC_TIMESTAMP)

    def test_accepts_when_any_listed_signature_matches(self) -> None:
        listed = f"v1a,bm90IHRoaXM= v1,AAAA v2,{SPEC_SIGNATURE[3:]} {SPEC_SIGNATURE}"
        signing.verify(
            SPEC_SECRET,
            body=SPEC_BODY,
            headers=self.headers(**{"webhook-signature": listed}),
            now=SPEC_TIMESTAMP,
        )

    def test_accepts_with_either_secret_during_rotation(self) -> None:
        signing.verify(
            [signing.generate_secret(), SPEC_SECRET],
            body=SPEC_BODY,
            headers=self.headers(),
            now=SPEC_TIMESTAMP,
        )

    @pytest.mark.parametrize(
        ("body", "overrides", "now", "message"),
        [
            (SPEC_BODY + b" ", {}, SPEC_TIMESTAMP, "no matching signature"),
            (SPEC_BODY, {"webhook-id": "msg_other"}, SPEC_TIMESTAMP, "no matching signature"),
            (SPEC_BODY, {"webhook-timestamp": "1614265331"}, SPEC_TIMESTAMP, "no matching"),
            (SPEC_BODY, {"webhook-signature": "v2," + SPEC_SIGNATURE[3:]}, SPEC_TIMESTAMP, "no"),
            (SPEC_BODY, {"webhook-timestamp": "soon"}, SPEC_TIMESTAMP, "integer"),
            (SPEC_BODY, {}, SPEC_TIMESTAMP + 301, "tolerance"),
            (SPEC_BODY, {}, SPEC_TIMESTAMP - 301, "tolerance"),
        ],
    )
    def test_refuses(self, body: bytes, overrides: dict[str, str], now: int, message: str) -> None:
        with pytest.raises(signing.SignatureError, match=message):
            signing.verify(SPEC_SECRET, body=body, headers=self.headers(**overrides), now=now)

    def test_refuses_the_wrong_secret(self) -> None:
        with pytest.raises(signing.SignatureError):
            signing.verify(
                signing.generate_secret(),
                body=SPEC_BODY,
                headers=self.headers(),
                now=SPEC_TIMESTAMP,
            )

    @pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
    def test_refuses_missing_headers(self, missing: str) -> None:
        headers = self.headers()
        del headers[missing]
        with pytest.raises(signing.SignatureError, match=missing):
            signing.verify(SPEC_SECRET, body=SPEC_BODY, headers=headers, now=SPEC_TIMESTAMP)

    def test_within_tolerance_is_accepted(self) -> None:
        signing.verify(
            SPEC_SECRET, body=SPEC_BODY, headers=self.headers(), now=SPEC_TIMESTAMP + 300
        )
