"""Which URLs forwarding may call, and the address to call them at.

A target's host is resolved and every address it resolves to must be public: no loopback,
private, link-local (169.254.169.254, the cloud metadata service), multicast, reserved or
unspecified address, IPv4-mapped ones included, unless it is inside one of the operator's
OPENXP_FORWARDING_ALLOW_NETWORKS. The check runs when a target is added and again before
every delivery, and the delivery connects to the address that was checked (``Vetted.address``),
so a DNS answer that changes in between (rebinding) cannot steer it elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from openxp.forwarding.errors import DestinationRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Vetted:
    """A URL whose host resolved to ``address``, which passed the check."""

    url: str
    host: str
    port: int
    address: Address

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def at_address(self, path: str = "") -> str:
        """The URL (with ``path`` appended) with the checked address in place of the host."""
        parts = urlsplit(self.url)
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return urlunsplit(
            (
                parts.scheme,
                f"{host}:{self.port}",
                parts.path.rstrip("/") + path if path else parts.path,
                parts.query,
                "",
            )
        )


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable target URL, or DestinationRefused."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise DestinationRefused("the URL is malformed") from None
    if parts.scheme not in {"http", "https"}:
        raise DestinationRefused("a forwarding URL must start with http:// or https://")
    if not parts.hostname:
        raise DestinationRefused("a forwarding URL must name a host")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("put credentials in --auth-stdin, not in the URL (it would show them)")
    if parts.fragment:
        raise DestinationRefused("a forwarding URL has no #fragment")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def refusal(address: Address, allowed: Iterable[str]) -> str | None:
    """Why ``address`` may not be called (None: it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for network in allowed:
        if address in ipaddress.ip_network(network):
            return None
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(address, f"is_{kind}"):
            return f"{address} is a {kind.replace('_', '-')} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


async def resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DestinationRefused(f"the host {host!r} does not resolve ({exc.strerror or exc})") from None
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise DestinationRefused(f"the host {host!r} does not resolve")
    return found


async def vet(url: str, allowed: Iterable[str]) -> Vetted:
    """Resolve the URL's host and check every address; the first one is the one to call."""
    allowed = tuple(allowed)
    _, host, port = parse(url)
    addresses = await resolve(host, port)
    for address in addresses:
        why = refusal(address, allowed)
        if why is not None:
            raise DestinationRefused(
                f"refused to forward to {host}: {why} (allow it with OPENXP_FORWARDING_ALLOW_NETWORKS)"
            )
    return Vetted(url.strip(), host, port, addresses[0])
