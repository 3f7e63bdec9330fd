"""The outbound URL guard, with a resolver that answers what the test says."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from services.messaging.channels.guard import HostUnresolved, UrlGuard, UrlRefused, resolve_host


def resolving_to(*addresses: str) -> UrlGuard:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if not addresses:
            raise OSError("Name or service not known")
        return addresses

    return UrlGuard(resolve=resolve)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("192.168.0.9", "private"),
        ("172.16.5.5", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
    ],
)
async def test_internal_addresses_are_refused(address: str, kind: str) -> None:
    with pytest.raises(UrlRefused, match=kind):
        await resolving_to("93.184.215.14", address).check("https://hooks.example.com/x")


async def test_a_public_address_passes() -> None:
    await resolving_to("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c").check(
        "https://hooks.example.com/x"
    )


async def test_private_targets_pass_when_allowed() -> None:
    await UrlGuard(allow_private=True).check("http://127.0.0.1:9/hook")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/x", "only http and https"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https:///x", "no host"),
        ("https://evil.example.org/x", "allowlist"),
    ],
)
async def test_urls_refused_before_resolution(url: str, message: str) -> None:
    guard = UrlGuard(allowlist=("*.example.com", "crm.internal"), allow_private=True)
    with pytest.raises(UrlRefused, match=message):
        await guard.check(url)


async def test_the_allowlist_takes_exact_hosts_and_subdomain_wildcards() -> None:
    guard = UrlGuard(allowlist=("*.example.com", "crm.internal"), allow_private=True)
    await guard.check("https://a.b.example.com/x")
    await guard.check("https://CRM.internal./x")
    with pytest.raises(UrlRefused):
        await guard.check("https://example.com.evil.org/x")


async def test_a_name_that_does_not_resolve_may_resolve_later() -> None:
    with pytest.raises(HostUnresolved):
        await resolving_to().check("https://nowhere.example.com/x")


async def test_localhost_resolves_to_loopback_and_is_refused() -> None:
    assert "127.0.0.1" in await resolve_host("localhost", 80)
    with pytest.raises(UrlRefused, match="loopback"):
        await UrlGuard().check("http://localhost:8080/")
