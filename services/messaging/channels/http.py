"""The HTTP adapter: any :class:`HttpFormat` sent with aiohttp, behind the URL guard.

Redirects are not followed (a redirect could lead past the guard). Timeouts and
connection errors are retryable; a URL the guard refuses, or a message the format cannot
build (no robot URL configured), is permanent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import aiohttp

from services.messaging.channels.base import OutboundMessage, SendResult
from services.messaging.channels.guard import HostUnresolved, UrlGuard, UrlRefused
from services.messaging.channels.requests import HttpAnswer, HttpRequest
from shared.clock import Clock


class HttpFormat(Protocol):
    """How one channel spells its request and reads its answer."""

    def request(self, message: OutboundMessage, now: datetime) -> HttpRequest: ...

    def result(self, answer: HttpAnswer, now: datetime) -> SendResult: ...


HttpClient = aiohttp.ClientSession
"""The pooled client HTTP channels share (made by :func:`http_client`)."""


def http_client(timeout_seconds: float) -> HttpClient:
    """The client HTTP channels share: bounded time per request, pooled keep-alive
    connections (at most 200), no cookies kept, no proxy from the environment. Create it
    inside the running event loop and close it (``async with``).

    aiohttp rather than httpx: on the dispatcher's path it takes about a tenth of the CPU
    per request (httpcore's pool scans every connection on each request and response)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        connector=aiohttp.TCPConnector(limit=200),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"user-agent": "milepost-messaging"},
        trust_env=False,
    )


class HttpChannel:
    def __init__(
        self, spelling: HttpFormat, *, client: HttpClient, guard: UrlGuard, clock: Clock
    ) -> None:
        self.spelling = spelling
        self.client = client
        self.guard = guard
        self.clock = clock

    async def send(self, message: OutboundMessage) -> SendResult:
        now = self.clock.now()
        try:
            request = self.spelling.request(message, now)
            await self.guard.check(request.url)
        except (UrlRefused, ValueError, KeyError) as exc:
            return SendResult.permanent(str(exc))
        except HostUnresolved as exc:
            return SendResult.retryable(str(exc))
        try:
            async with self.client.post(
                request.url,
                data=request.content,
                headers=dict(request.headers),
                allow_redirects=False,
            ) as response:
                answer = HttpAnswer(
                    response.status,
                    {name.lower(): value for name, value in response.headers.items()},
                    await response.read(),
                )
        except TimeoutError as exc:
            return SendResult.retryable(f"timeout: {type(exc).__name__}")
        except aiohttp.ClientError as exc:
            return SendResult.retryable(f"connection failed: {type(exc).__name__}: {exc}")
        return self.spelling.result(answer, self.clock.now())
