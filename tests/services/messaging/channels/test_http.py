"""The HTTP adapter: it connects only to addresses the guard checked when it sends, and
reads a bounded part of the answer. Every name resolves to 127.0.0.1 here (the sink)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from services.messaging.channels.base import SendResult
from services.messaging.channels.guard import UrlGuard
from services.messaging.channels.http import HttpChannel, http_client
from services.messaging.channels.requests import HttpAnswer, HttpRequest
from services.messaging.deliveries.message import Message
from shared.clock import FrozenClock
from tests.services.messaging.channels.support import NOW, message
from tests.services.messaging.http_sink import Receive, Scope, Send, Sink, running_sink

PUBLIC = "93.184.215.14"
CHUNK = b"x" * (1024 * 1024)


@dataclass
class Recording:
    """Posts ``{}`` to ``url`` and keeps every answer."""

    url: str
    answers: list[HttpAnswer] = field(default_factory=list)

    def request(self, message: Message, now: datetime) -> HttpRequest:
        return HttpRequest(self.url, {}, b"{}")

    def result(self, answer: HttpAnswer, now: datetime) -> SendResult:
        self.answers.append(answer)
        return SendResult.sent(None)


def answering(*answers: Sequence[str], allow_loopback: bool) -> UrlGuard:
    """A guard whose resolver gives ``answers`` in turn (the last one from then on)."""
    remaining = list(answers)

    async def resolve(host: str, port: int) -> Sequence[str]:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return UrlGuard(allow_loopback=allow_loopback, resolve=resolve)


async def send_through(guard: UrlGuard, url: str) -> SendResult:
    async with http_client(2.0, guard) as client:
        channel = HttpChannel(Recording(url), client=client, guard=guard, clock=FrozenClock(NOW))
        return await channel.send(message())


def by_name(sink: Sink, path: str = "/hook") -> str:
    return f"http://hooks.example.com:{urlsplit(sink.url).port}{path}"


async def test_the_connection_goes_to_the_address_the_guard_checked(sink: Sink) -> None:
    result = await send_through(answering(["127.0.0.1"], allow_loopback=True), by_name(sink))
    assert result.outcome == "sent"
    (request,) = sink.received
    assert request.headers["host"].startswith("hooks.example.com:")


async def test_a_name_rebound_to_a_refused_address_is_not_called(sink: Sink) -> None:
    guard = answering([PUBLIC], ["127.0.0.1"], allow_loopback=False)
    await guard.check(by_name(sink))  # when the subscription is registered: public

    result = await send_through(guard, by_name(sink))  # when sent: loopback

    assert result.outcome == "permanent"
    assert "loopback" in (result.reason or "")
    assert sink.received == []


async def test_a_name_that_stops_resolving_is_retried_later(sink: Sink) -> None:
    guard = answering([], allow_loopback=True)
    result = await send_through(guard, by_name(sink))
    assert result.outcome == "retryable"
    assert sink.received == []


@dataclass
class Endless(Sink):
    """Answers 16 MiB, a mebibyte at a time."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(16):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def test_only_the_first_bytes_of_an_answer_are_read() -> None:
    async with running_sink(Endless()) as sink:
        spelling = Recording(f"{sink.url}/big")
        guard = UrlGuard(allow_loopback=True)
        async with http_client(2.0, guard) as client:
            channel = HttpChannel(
                spelling,
                client=client,
                guard=guard,
                clock=FrozenClock(NOW),
                max_response_bytes=4096,
            )
            assert (await channel.send(message())).outcome == "sent"
            assert (await channel.send(message())).outcome == "sent"
    assert [len(answer.content) for answer in spelling.answers] == [4096, 4096]
