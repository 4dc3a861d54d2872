"""SSRF policy for webhook and Slack URLs. No name here needs DNS beyond /etc/hosts."""

from __future__ import annotations

import ipaddress

import pytest

from app.alerting.targets import (
    InvalidTargetError,
    check_url,
    pinned_request,
    redact_url,
    refusal,
)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://169.254.170.2/v2/credentials", "cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
        ("http://100.100.100.200/latest/meta-data/", "cloud metadata"),
        ("http://192.0.0.192/", "cloud metadata"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),
        ("http://[2002:a9fe:a9fe::1]/", "cloud metadata"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://0.0.0.0:8080/", "unspecified"),
        ("http://0.1.2.3/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://255.255.255.255/", "reserved"),
        ("http://240.0.0.1/", "reserved"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata service"),
        ("http://METADATA.google.internal./", "metadata service"),
    ],
)
def test_never_allowed_even_with_private_targets(url: str, reason: str) -> None:
    with pytest.raises(InvalidTargetError, match=reason):
        check_url(url, allow_private=True)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://[::1]:8080/hook", "loopback"),
        ("http://localhost:8080/hook", "loopback"),
        ("http://10.0.0.5/hook", "private"),
        ("http://172.16.3.4/hook", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("http://100.64.0.1/hook", "private"),
        ("http://[fd12:3456::1]/hook", "private"),
        ("http://[::ffff:10.0.0.1]/hook", "private"),
    ],
)
def test_private_targets_need_the_setting(url: str, kind: str) -> None:
    with pytest.raises(InvalidTargetError, match=f"{kind} address, allowed only when private"):
        check_url(url, allow_private=False)
    checked = check_url(url, allow_private=True)
    assert checked.addresses


def test_a_public_address_is_allowed() -> None:
    checked = check_url("https://8.8.8.8/hook", allow_private=False)
    assert checked.addresses == (ipaddress.ip_address("8.8.8.8"),)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://127.0.0.1/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://127.0.0.1:6379/_INFO", "http:// or https://"),
        ("/relative/hook", "http:// or https://"),
        ("http:///nohost", "no host"),
        ("https://user:pass@127.0.0.1/hook", "credentials"),
        ("http://[not-an-ip]/", "not a valid URL"),
    ],
)
def test_malformed_urls(url: str, problem: str) -> None:
    with pytest.raises(InvalidTargetError, match=problem):
        check_url(url, allow_private=True)


def test_refusal_messages_never_show_the_path() -> None:
    with pytest.raises(InvalidTargetError) as caught:
        check_url("http://10.0.0.1/services/T000/B000/SECRETTOKEN", allow_private=False)
    assert "SECRETTOKEN" not in str(caught.value)
    assert redact_url("https://hooks.slack.com/services/T0/B0/SECRETTOKEN") == (
        "https://hooks.slack.com/…"
    )
    assert redact_url("http://[::1]:8080/x") == "http://[::1]:8080/…"
    assert redact_url("not a url at all") == "<invalid URL>"


def test_refusal_of_a_global_ipv6_address_is_none() -> None:
    assert refusal(ipaddress.ip_address("2001:4860:4860::8888"), allow_private=False) is None


def test_pinning_keeps_the_host_name_for_host_header_and_tls() -> None:
    pinned = pinned_request(check_url("https://localhost:8443/hook?x=1", allow_private=True))
    assert str(pinned.url) == "https://127.0.0.1:8443/hook?x=1"
    assert pinned.headers == {"Host": "localhost:8443", "Connection": "close"}
    assert pinned.extensions == {"sni_hostname": "localhost"}

    plain = pinned_request(check_url("http://localhost/hook", allow_private=True))
    assert str(plain.url) == "http://127.0.0.1/hook"
    assert plain.headers == {"Host": "localhost"}
    assert plain.extensions == {}

    literal = pinned_request(check_url("https://127.0.0.1:9/hook", allow_private=True))
    assert str(literal.url) == "https://127.0.0.1:9/hook"
    assert literal.headers == {} and literal.extensions == {}
