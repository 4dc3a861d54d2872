"""Where a webhook or Slack message may be sent: SSRF safety for channel URLs.

A channel URL is chosen by an admin but fetched by the server, from inside its
network. So a URL is accepted only when it is ``http``/``https`` without
credentials, and *every* address its host resolves to is acceptable:

- never: link-local (``169.254.0.0/16``, ``fe80::/10``, which hold the cloud
  metadata services), known cloud metadata addresses outside that range,
  multicast, unspecified / "this network" (``0.0.0.0/8``, ``::``), reserved
  and broadcast;
- only with ``allow_private``: loopback and every other non-global address
  (RFC 1918, ``fc00::/7``, ``100.64.0.0/10``, benchmarking ranges, ...).

IPv4 addresses embedded in IPv6 (``::ffff:a.b.c.d``, 6to4, NAT64
``64:ff9b::/96``) are judged as the IPv4 address they reach.

The check runs when a channel is created and again before every send, because
DNS answers change. :func:`pinned_request` then sends to the very address that
was checked (keeping the ``Host`` header and the TLS server name), so a DNS
answer that changes between the check and the connection cannot redirect it.

>>> check_url("http://169.254.169.254/latest/meta-data/", allow_private=True)
Traceback (most recent call last):
...
app.alerting.targets.InvalidTargetError: http://169.254.169.254/… resolves to 169.254.169.254, \
a cloud metadata address, which is never allowed
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Final

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES: Final[frozenset[IPAddress]] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
    )
)
METADATA_HOSTNAMES: Final = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ONLY_IF_PRIVATE = "allowed only when private targets are enabled"


class InvalidTargetError(ValueError):
    """A channel target that must not be used. The message is safe to show to the admin."""


class UnresolvableTargetError(InvalidTargetError):
    """The target's host did not resolve (which may pass: at send time this is retried)."""


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """A URL whose every resolved address passed the policy."""

    url: httpx.URL
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class PinnedRequest:
    """How to send to a :class:`CheckedTarget` without resolving its name again."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, str]


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not be reached, or ``None`` if it may.

    >>> refusal(ipaddress.ip_address("10.0.0.5"), allow_private=False)
    'a private address, allowed only when private targets are enabled'
    >>> refusal(ipaddress.ip_address("10.0.0.5"), allow_private=True) is None
    True
    >>> refusal(ipaddress.ip_address("::ffff:169.254.169.254"), allow_private=True)
    'a cloud metadata address, which is never allowed'
    """
    ip = _embedded_ipv4(address)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address, which is never allowed"
    if ip.is_link_local:
        return "a link-local address, which is never allowed"
    if ip.is_multicast:
        return "a multicast address, which is never allowed"
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "an unspecified address, which is never allowed"
    if ip.is_loopback:
        return None if allow_private else f"a loopback address, {_ONLY_IF_PRIVATE}"
    if ip.is_reserved or ip == ipaddress.IPv4Address("255.255.255.255"):
        return "a reserved address, which is never allowed"
    if not ip.is_global or ip.is_private:
        return None if allow_private else f"a private address, {_ONLY_IF_PRIVATE}"
    return None


def redact_url(url: str) -> str:
    """A URL fit for logs and API answers: scheme and host, never the path.

    Slack incoming-webhook URLs carry their secret in the path.

    >>> redact_url("https://hooks.slack.com/services/T0/B0/XXXX")
    'https://hooks.slack.com/…'
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
    if not parsed.host:
        return "<invalid URL>"
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{host}{port}/…"


def parse_url(url: str) -> httpx.URL:
    """Syntax only: an absolute ``http(s)`` URL with a host and no credentials."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise InvalidTargetError("the target is not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise InvalidTargetError("the target must be an http:// or https:// URL")
    if not parsed.host:
        raise InvalidTargetError("the target URL has no host")
    if parsed.userinfo:
        raise InvalidTargetError(
            "credentials in the URL are not supported; webhooks are authenticated by "
            "their signing secret"
        )
    return parsed


def resolve(url: httpx.URL) -> tuple[IPAddress, ...]:
    """Every address the URL's host resolves to (an IP literal resolves to itself)."""
    host = url.raw_host.decode("ascii")
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableTargetError(f"the host {url.host} does not resolve: {exc}") from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        # Drop an IPv6 zone ("fe80::1%eth0"); the address alone decides.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableTargetError(f"the host {url.host} has no IP address")
    return tuple(addresses)


def check_url(url: str, *, allow_private: bool) -> CheckedTarget:
    """Parse and resolve ``url``; :class:`InvalidTargetError` unless every address is allowed."""
    parsed = parse_url(url)
    shown = redact_url(url)
    if parsed.host.lower().rstrip(".") in METADATA_HOSTNAMES:
        raise InvalidTargetError(f"{shown} names a cloud metadata service, which is never allowed")
    addresses = resolve(parsed)
    for address in addresses:
        reason = refusal(address, allow_private=allow_private)
        if reason is not None:
            raise InvalidTargetError(f"{shown} resolves to {address}, {reason}")
    return CheckedTarget(url=parsed, addresses=addresses)


def pinned_request(target: CheckedTarget) -> PinnedRequest:
    """Send to the first checked address, as if to the original host.

    For HTTPS the certificate is still verified against the original host name
    (the ``sni_hostname`` extension), and the connection is not kept for reuse:
    a pooled connection is keyed by address alone and could otherwise be
    reused for another host name served from the same address.
    """
    url = target.url
    address = target.addresses[0]
    if url.host == str(address):  # an IP literal: nothing to pin
        return PinnedRequest(url=url, headers={}, extensions={})
    host_header = url.netloc.decode("ascii")
    pinned = url.copy_with(host=str(address))
    headers = {"Host": host_header}
    extensions: dict[str, str] = {}
    if url.scheme == "https":
        extensions["sni_hostname"] = url.raw_host.decode("ascii")
        headers["Connection"] = "close"
    return PinnedRequest(url=pinned, headers=headers, extensions=extensions)
