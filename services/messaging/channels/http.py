"""The HTTP adapter: any :class:`HttpFormat` sent with aiohttp, behind the URL guard.

The client connects only to addresses the guard checked at send time (its resolver is the
guard's). Redirects are not followed (a redirect could lead past the guard). At most
``max_response_bytes`` of an answer are read; the rest is left unread and the connection
closed. Timeouts and connection errors are retryable; a URL the guard refuses, or a
message the format cannot build (no robot URL configured), is permanent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import aiohttp

from services.messaging.channels.base import SendResult
from services.messaging.channels.guard import (
    GuardedResolver,
    HostUnresolved,
    UrlGuard,
    UrlRefused,
)
from services.messaging.channels.requests import HttpAnswer, HttpRequest
from services.messaging.deliveries.message import Message
from shared.clock import Clock


class HttpFormat(Protocol):
    """How one channel spells its request and reads its answer."""

    def request(self, message: Message, now: datetime) -> HttpRequest: ...

    def result(self, answer: HttpAnswer, now: datetime) -> SendResult: ...


HttpClient = aiohttp.ClientSession
"""The pooled client HTTP channels share (made by :func:`http_client`)."""


DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024


def http_client(timeout_seconds: float, guard: UrlGuard) -> HttpClient:
    """The client HTTP channels share: names resolved through ``guard`` (see
    :class:`GuardedResolver`), bounded time per request, pooled keep-alive connections (at
    most 200), no cookies kept, no proxy from the environment. Create it inside the running
    event loop and close it (``async with``).

    aiohttp rather than httpx: on the dispatcher's path it takes about a tenth of the CPU
    per request (httpcore's pool scans every connection on each request and response)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        connector=aiohttp.TCPConnector(limit=200, resolver=GuardedResolver(guard)),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"user-agent": "milepost-messaging"},
        trust_env=False,
    )


async def read_at_most(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The first ``max_bytes`` of the body (all of it when shorter); no more is read."""
    body = bytearray()
    while len(body) < max_bytes:
        chunk = await response.content.read(max_bytes - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


class HttpChannel:
    """Sends with ``client``, which must resolve names through ``guard`` (made by
    :func:`http_client` with it); the guard also checks each URL's form before."""

    def __init__(
        self,
        spelling: HttpFormat,
        *,
        client: HttpClient,
        guard: UrlGuard,
        clock: Clock,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.spelling = spelling
        self.client = client
        self.guard = guard
        self.clock = clock
        self.max_response_bytes = max_response_bytes

    async def send(self, message: Message) -> SendResult:
        now = self.clock.now()
        try:
            request = self.spelling.request(message, now)
            self.guard.target(request.url)
            async with self.client.post(
                request.url,
                data=request.content,
                headers=dict(request.headers),
                allow_redirects=False,
            ) as response:
                answer = HttpAnswer(
                    response.status,
                    {name.lower(): value for name, value in response.headers.items()},
                    await read_at_most(response, self.max_response_bytes),
                )
        except (UrlRefused, ValueError, KeyError) as exc:
            return SendResult.permanent(str(exc))
        except HostUnresolved as exc:
            return SendResult.retryable(str(exc))
        except TimeoutError as exc:
            return SendResult.retryable(f"timeout: {type(exc).__name__}")
        except aiohttp.ClientError as exc:
            return SendResult.retryable(f"connection failed: {type(exc).__name__}: {exc}")
        return self.spelling.result(answer, self.clock.now())
