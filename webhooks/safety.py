"""Where a webhook may be sent: the URL and every address its host resolves to (SSRF).

``check_url`` is asked when an endpoint is registered and again at every attempt, and the
attempt connects to the very address that was checked (``transport.post`` pins it), so a
DNS answer that changes between the check and the connection (rebinding) cannot switch it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata services, refused whatever else is said about them (the allow-list too).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)


class UnsafeURL(ValueError):
    """A URL that webhooks may not be sent to; the message says why (shown to the user)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: its host name (for Host and SNI) and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(cidr.strip(), strict=False)
        for cidr in settings.WEBHOOK_ALLOWED_NETWORKS
        if cidr.strip()
    ]


def address_refusal(address: IPAddress) -> str:
    """Why a connection to ``address`` is refused, or "" when it is allowed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if any(address in network for network in allowed_networks()):
        return ""
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_private:
        return f"{address} is a private address"
    if address.is_reserved or address.is_unspecified or not address.is_global:
        return f"{address} is a reserved address"
    return ""


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal address is itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"The host {host!r} cannot be resolved.") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def check_url(url: str) -> Target:
    """The URL's target when webhooks may go there, else ``UnsafeURL`` saying why.

    https:// only, or http:// too when ``WEBHOOK_ALLOW_HTTP`` (the default under DEBUG); no
    user name or password in it; every address the host resolves to allowed.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"This is not a valid URL: {exc}.") from exc
    schemes = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeURL(f"Only {' or '.join(s + '://' for s in schemes)} URLs are allowed.")
    if not parts.hostname:
        raise UnsafeURL("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("The URL may not hold a user name or password.")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(parts.hostname, port)
    for address in addresses:
        refusal = address_refusal(address)
        if refusal:
            raise UnsafeURL(f"Webhooks may not be sent to {parts.hostname}: {refusal}.")
    return Target(
        url=url, scheme=parts.scheme, host=parts.hostname, port=port, address=addresses[0]
    )
