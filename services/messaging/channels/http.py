"""The HTTP adapter: any :class:`HttpFormat` sent with httpx, behind the URL guard.

Redirects are not followed (a redirect could lead past the guard). Timeouts and
connection errors are retryable; a URL the guard refuses, or a message the format cannot
build (no robot URL configured), is permanent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import httpx

from services.messaging.channels.base import OutboundMessage, SendResult
from services.messaging.channels.guard import HostUnresolved, UrlGuard, UrlRefused
from services.messaging.channels.requests import HttpAnswer, HttpRequest
from shared.clock import Clock


class HttpFormat(Protocol):
    """How one channel spells its request and reads its answer."""

    def request(self, message: OutboundMessage, now: datetime) -> HttpRequest: ...

    def result(self, answer: HttpAnswer, now: datetime) -> SendResult: ...


def http_client(timeout_seconds: float) -> httpx.AsyncClient:
    """The client HTTP channels share: bounded time, no redirects, pooled connections."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        headers={"user-agent": "milepost-messaging"},
    )


class HttpChannel:
    def __init__(
        self, spelling: HttpFormat, *, client: httpx.AsyncClient, guard: UrlGuard, clock: Clock
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
            response = await self.client.post(
                request.url, content=request.content, headers=dict(request.headers)
            )
        except httpx.TimeoutException as exc:
            return SendResult.retryable(f"timeout: {type(exc).__name__}")
        except httpx.TransportError as exc:
            return SendResult.retryable(f"connection failed: {type(exc).__name__}: {exc}")
        answer = HttpAnswer(
            response.status_code,
            {name.lower(): value for name, value in response.headers.items()},
            response.content,
        )
        return self.spelling.result(answer, self.clock.now())
