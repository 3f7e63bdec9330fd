"""Where outbound HTTP may go: an allowlist of hosts, and only globally routable addresses.

Every address a name resolves to is checked, so a name that also points inside the
network is refused. An address is refused unless it is globally routable (Python's
``is_global`` and the IANA special-purpose registries, so also shared 100.64.0.0/10,
192.0.0.0/24, site-local fec0::/10); an IPv6 address that carries an IPv4 one
(IPv4-mapped, 6to4, NAT64 64:ff9b::/96, Teredo) is judged by what it carries. Loopback
passes only when allowed (tests, the embedded mode); any other address only when it lies
in a network listed by CIDR (``allowed_networks``: an intranet CRM, never by default).

The check runs when a URL is registered and again on every send, where
:class:`GuardedResolver` makes the HTTP client connect only to the addresses it checked:
an answer that changes between the two (DNS rebinding) is checked again, not trusted.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

from services.messaging.errors import MessagingError
from shared.errors import Invalid

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UrlRefused(MessagingError, Invalid):
    """An outbound URL the guard does not let through; the message says why. Permanent."""

    field = "url"


class HostUnresolved(MessagingError, Invalid):
    """The URL's host did not resolve (now); a later attempt may succeed."""

    field = "url"


_NOT_GLOBAL: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        # IANA special-purpose ranges older Pythons still call global.
        "0.0.0.0/8",
        "100.64.0.0/10",  # shared address space: cloud metadata (100.100.100.200), CGNAT
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "::/8",  # IPv4-compatible and other legacy forms
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",  # site-local
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


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


def carried_addresses(ip: IpAddress) -> tuple[IpAddress, ...]:
    """The IPv4 addresses an IPv6 address carries (IPv4-mapped, 6to4, NAT64, Teredo's
    server and client), or the address itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return (ip,)
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    if ip in _NAT64:
        return (ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF),)
    return (ip,)


def address_kind(ip: IpAddress) -> str | None:
    """What keeps ``ip`` from being a public destination, or None when it is one."""
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
    if not ip.is_global or any(ip in network for network in _NOT_GLOBAL):
        return "non-global"
    return None


def refused_address(
    address: str, *, allow_loopback: bool = False, allowed: Sequence[IpNetwork] = ()
) -> str | None:
    """Why ``address`` is refused (its kind, e.g. ``link-local``), or None when it passes:
    public, loopback when ``allow_loopback``, or inside one of the ``allowed`` networks."""
    return _refused(address, allow_loopback, tuple(allowed))


@functools.lru_cache(maxsize=1024)
def _refused(address: str, allow_loopback: bool, allowed: tuple[IpNetwork, ...]) -> str | None:
    """:func:`refused_address`, remembered: a dispatcher checks the same few addresses on
    every send (and the standard library's checks parse networks on each call)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    for carried in carried_addresses(ip):
        if any(carried in network or ip in network for network in allowed):
            continue
        kind = address_kind(carried)
        if kind is not None and not (kind == "loopback" and allow_loopback):
            return kind
    return None


@dataclass(frozen=True, slots=True)
class UrlGuard:
    allowlist: tuple[str, ...] = ()
    allow_loopback: bool = False
    allowed_networks: tuple[IpNetwork, ...] = ()
    resolve: Resolver = resolve_host

    def target(self, url: str) -> tuple[str, int]:
        """The host and port of ``url`` when its form may be called (scheme, no
        credentials, the host allowlisted, an address host allowed); else
        :class:`UrlRefused`. Names are not resolved here."""
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
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise UrlRefused(f"{url!r}: {exc}") from exc
        if _is_address(host):
            self._refuse_bad(host, [host])
        return host, port

    async def addresses(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to, when all of them are allowed; raises
        :class:`UrlRefused` naming one that is not, :class:`HostUnresolved` when none."""
        if _is_address(host):
            found: Sequence[str] = [host]
        else:
            try:
                found = await self.resolve(host, port)
            except OSError as exc:
                raise HostUnresolved(f"host {host!r} does not resolve: {exc}") from exc
        if not found:
            raise HostUnresolved(f"host {host!r} does not resolve")
        self._refuse_bad(host, found)
        return list(found)

    async def check(self, url: str) -> None:
        """Return when ``url`` may be called now; raise :class:`UrlRefused` naming the
        reason, or :class:`HostUnresolved`."""
        await self.addresses(*self.target(url))

    def _refuse_bad(self, host: str, addresses: Sequence[str]) -> None:
        for address in addresses:
            kind = refused_address(
                address, allow_loopback=self.allow_loopback, allowed=self.allowed_networks
            )
            if kind is not None and address == host:
                raise UrlRefused(f"{host!r} is a {kind} address")
            if kind is not None:
                raise UrlRefused(f"host {host!r} resolves to a {kind} address ({address})")


@functools.lru_cache(maxsize=1024)
def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for outbound HTTP: it resolves through the guard, so a
    connection goes only to addresses the guard checked at that moment. Raises the
    guard's :class:`UrlRefused` or :class:`HostUnresolved` out of the request."""

    def __init__(self, guard: UrlGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        name = host.rstrip(".")
        return [
            ResolveResult(
                hostname=name,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in await self._guard.addresses(name, port)
        ]

    async def close(self) -> None:
        """Nothing to release."""
