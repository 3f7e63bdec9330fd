"""The outbound URL guard, with a resolver that answers what the test says. The guard's
decisions are asserted; no request leaves for an address other than 127.0.0.1."""

from __future__ import annotations

import ipaddress

import pytest

from services.messaging.channels.guard import (
    GuardedResolver,
    HostUnresolved,
    UrlGuard,
    UrlRefused,
    refused_address,
    resolve_host,
)
from tests.services.messaging.channels.support import INTERNAL_URLS, resolving_to

PUBLIC = "93.184.215.14"


@pytest.mark.parametrize(
    ("address", "decision"),
    [
        ("10.1.2.3", "private"),
        ("192.168.0.9", "private"),
        ("172.16.5.5", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff0e::1", "multicast"),
        # issue 16: accepted before
        ("100.100.100.200", "refused"),  # a cloud metadata address
        ("100.64.0.1", "refused"),
        ("100.127.255.254", "refused"),
        ("192.0.0.192", "refused"),
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("fec0::1", "refused"),
        ("::ffff:100.100.100.200", "refused"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("64:ff9b::7f00:1", "loopback"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "refused"),  # Teredo, client 192.0.2.45
        ("::a9fe:a9fe", "refused"),  # IPv4-compatible
        ("fd00:ec2::254", "refused"),  # a cloud metadata address over IPv6
        ("198.18.0.1", "refused"),
        ("240.0.0.1", "refused"),
        ("2001:db8::1", "refused"),
        # globally routable
        (PUBLIC, None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
        ("::ffff:93.184.215.14", None),
        ("2002:5db8:d70e::1", None),  # 6to4 of a public address
        ("64:ff9b::5db8:d70e", None),  # NAT64 of a public address
    ],
)
def test_only_globally_routable_addresses_pass(address: str, decision: str | None) -> None:
    """``refused`` where Python versions name the range differently (private, reserved)."""
    refused = refused_address(address)
    assert refused is not None if decision == "refused" else refused == decision, refused


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.8.8.8", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("64:ff9b::7f00:1", True),
        ("0.0.0.0", False),
        ("169.254.169.254", False),
        ("100.100.100.200", False),
        ("10.0.0.1", False),
    ],
)
def test_the_loopback_setting_lets_only_loopback_through(address: str, allowed: bool) -> None:
    assert (refused_address(address, allow_loopback=True) is None) is allowed


def test_listed_networks_pass_by_their_exact_cidr() -> None:
    allowed = (ipaddress.ip_network("169.254.169.254/32"), ipaddress.ip_network("10.20.0.0/16"))
    assert refused_address("169.254.169.254", allowed=allowed) is None
    assert refused_address("2002:a9fe:a9fe::1", allowed=allowed) is None
    assert refused_address("10.20.3.4", allowed=allowed) is None
    assert refused_address("169.254.169.253", allowed=allowed) == "link-local"
    assert refused_address("10.21.0.1", allowed=allowed) == "private"


@pytest.mark.parametrize(
    "url",
    INTERNAL_URLS,
)
async def test_address_urls_are_refused_even_with_loopback_allowed(url: str) -> None:
    with pytest.raises(UrlRefused):
        await UrlGuard(allow_loopback=True).check(url)
    with pytest.raises(UrlRefused):
        UrlGuard(allow_loopback=True).target(url)


async def test_a_name_is_refused_when_any_of_its_addresses_is() -> None:
    with pytest.raises(UrlRefused, match="link-local"):
        await resolving_to(PUBLIC, "169.254.169.254").check("https://hooks.example.com/x")
    await resolving_to(PUBLIC).check("https://hooks.example.com/x")


async def test_loopback_passes_only_with_the_setting() -> None:
    await UrlGuard(allow_loopback=True).check("http://127.0.0.1:9/hook")
    await resolving_to("127.0.0.1", allow_loopback=True).check("http://crm.local/hook")
    with pytest.raises(UrlRefused, match="loopback"):
        await UrlGuard().check("http://127.0.0.1:9/hook")
    with pytest.raises(UrlRefused, match="loopback"):
        await resolving_to("127.0.0.1").check("http://crm.local/hook")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/x", "only http and https"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https:///x", "no host"),
        ("https://evil.example.org/x", "allowlist"),
        ("https://hooks.example.com:99999/x", "out of range"),
    ],
)
async def test_urls_refused_before_resolution(url: str, message: str) -> None:
    guard = UrlGuard(allowlist=("*.example.com", "crm.internal"), allow_loopback=True)
    with pytest.raises(UrlRefused, match=message):
        guard.target(url)


async def test_the_allowlist_takes_exact_hosts_and_subdomain_wildcards() -> None:
    guard = UrlGuard(allowlist=("*.example.com", "crm.internal"))
    assert guard.target("https://a.b.example.com/x") == ("a.b.example.com", 443)
    assert guard.target("http://CRM.internal./x") == ("crm.internal.", 80)
    with pytest.raises(UrlRefused):
        guard.target("https://example.com.evil.org/x")


async def test_a_name_that_does_not_resolve_may_resolve_later() -> None:
    with pytest.raises(HostUnresolved):
        await resolving_to().check("https://nowhere.example.com/x")


async def test_localhost_resolves_to_loopback_and_is_refused() -> None:
    assert "127.0.0.1" in await resolve_host("localhost", 80)
    with pytest.raises(UrlRefused, match="loopback"):
        await UrlGuard().check("http://localhost:8080/")


async def test_the_http_clients_resolver_answers_only_checked_addresses() -> None:
    resolver = GuardedResolver(resolving_to("127.0.0.1", "::1", allow_loopback=True))
    answers = await resolver.resolve("hooks.example.com.", 8080)
    assert [(a["host"], a["port"], a["hostname"]) for a in answers] == [
        ("127.0.0.1", 8080, "hooks.example.com"),
        ("::1", 8080, "hooks.example.com"),
    ]
    with pytest.raises(UrlRefused, match="link-local"):
        await GuardedResolver(resolving_to("169.254.169.254")).resolve("hooks.example.com", 80)
    with pytest.raises(HostUnresolved):
        await GuardedResolver(resolving_to()).resolve("hooks.example.com", 80)
