"""Where outbound HTTP may go: an allowlist of hosts, and no private, loopback, link-local
or otherwise reserved address after DNS resolution (unless private targets are allowed).

Every address a name resolves to is checked, so a name that also points inside the
network is refused. The HTTP client resolves the name again when it connects; an
attacker-controlled DNS answer that changes between the two (rebinding) is the residual
risk, which the allowlist closes for production.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.messaging.errors import MessagingError

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


class UrlRefused(MessagingError):
    """An outbound URL the guard does not let through; the message says why. Permanent."""


class HostUnresolved(MessagingError):
    """The URL's host did not resolve (now); a later attempt may succeed."""


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def host_allowed(host: str, allowlist: Sequence[str]) -> bool:
    """An empty allowlist allows every host; ``*.example.com`` allows its subdomains."""
    if not allowlist:
        return True
    host = host.lower().rstrip(".")
    for entry in allowlist:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def refused_address(address: str) -> str | None:
    """Why ``address`` is not a public destination, or None when it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return kind
    return None


@dataclass(frozen=True, slots=True)
class UrlGuard:
    allowlist: tuple[str, ...] = ()
    allow_private: bool = False
    resolve: Resolver = resolve_host

    async def check(self, url: str) -> None:
        """Return when ``url`` may be called; raise :class:`UrlRefused` naming the reason."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise UrlRefused(f"{url!r}: only http and https URLs are allowed")
        host = parts.hostname
        if not host:
            raise UrlRefused(f"{url!r}: no host")
        if parts.username or parts.password:
            raise UrlRefused(f"{url!r}: credentials in the URL are not allowed")
        if not host_allowed(host, self.allowlist):
            raise UrlRefused(f"host {host!r} is not in the outbound allowlist")
        if self.allow_private:
            return
        try:
            addresses = await self.resolve(
                host, parts.port or (443 if parts.scheme == "https" else 80)
            )
        except OSError as exc:
            raise HostUnresolved(f"host {host!r} does not resolve: {exc}") from exc
        if not addresses:
            raise HostUnresolved(f"host {host!r} does not resolve")
        for address in addresses:
            kind = refused_address(address)
            if kind is not None:
                raise UrlRefused(f"host {host!r} resolves to a {kind} address ({address})")
