"""The webhook channel against a local HTTP server, verified with the standardwebhooks
library as a receiver would."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.messaging.channels.guard import UrlGuard
from services.messaging.channels.http import HttpClient, http_client
from services.messaging.channels.webhooks import (
    NO_URL,
    WebhookFormat,
    new_secret,
    webhook_request,
)
from tests.processes import free_port
from tests.services.messaging.channels.support import NOW, OPEN_GUARD, http_channel, message
from tests.services.messaging.http_sink import Answer, Sink

SECRET = new_secret()


async def test_a_receiver_verifies_the_signature_and_sees_the_message(
    sink: Sink, client: HttpClient
) -> None:
    channel = http_channel(WebhookFormat(), client)
    sent = message(target={"url": f"{sink.url}/hooks"}, signing_secret=SECRET)

    result = await channel.send(sent)

    assert result.outcome == "sent"
    (request,) = sink.received
    assert request.path == "/hooks"
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload == {
        "type": "message.created",
        "timestamp": NOW.isoformat(),
        "data": {
            "delivery_id": sent.delivery_id,
            "workspace_id": "ws_test",
            "account_id": "acme",
            "trigger_id": "t-1",
            "contact_id": "c-admin",
            "category": "onboarding",
            "subject": "Finish your profile",
            "body": "Two steps left.",
        },
    }
    assert request.headers["webhook-id"] == sent.delivery_id
    assert request.headers["idempotency-key"] == sent.delivery_id
    assert request.headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)


def test_a_retry_sends_the_same_body_signed_anew() -> None:
    planned = NOW - timedelta(minutes=5)
    sent = message(target={"url": "https://hooks.example"}, signing_secret=SECRET)
    sent = replace(sent, planned_at=planned)

    first = webhook_request(sent, NOW)
    retry = webhook_request(replace(sent, attempt=2), NOW + timedelta(seconds=90))

    assert retry.content == first.content
    assert json.loads(first.content)["timestamp"] == planned.isoformat()
    assert retry.headers["webhook-id"] == first.headers["webhook-id"]
    assert retry.headers["webhook-timestamp"] != first.headers["webhook-timestamp"]
    for request in (first, retry):
        Webhook(SECRET).verify(request.content, dict(request.headers))


async def test_a_document_target_sends_its_body_as_the_data(sink: Sink, client: HttpClient) -> None:
    document = {"task_id": "tsk_1", "status": "open"}
    sent = message(
        target={"url": sink.url, "event_type": "task.created"},
        body=json.dumps(document),
        signing_secret=SECRET,
    )

    assert (await http_channel(WebhookFormat(), client).send(sent)).outcome == "sent"

    payload = Webhook(SECRET).verify(sink.received[0].body, sink.received[0].headers)
    assert payload["type"] == "task.created"
    assert payload["data"] == document


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after"),
    [
        (Answer(500, b"boom"), "retryable", None),
        (Answer(503, b"busy", (("retry-after", "7"),)), "retryable", 7.0),
        (Answer(429, b"slow down", (("retry-after", "30"),)), "retryable", 30.0),
        (Answer(410, b"gone"), "permanent", None),
        (Answer(400, b"bad"), "permanent", None),
        (Answer(204, b""), "sent", None),
    ],
)
async def test_answers_are_read_as_sent_retryable_or_permanent(
    sink: Sink,
    client: HttpClient,
    answer: Answer,
    outcome: str,
    retry_after: float | None,
) -> None:
    sink.answer(answer)
    result = await http_channel(WebhookFormat(), client).send(
        message(target={"url": sink.url}, signing_secret=SECRET)
    )
    assert result.outcome == outcome
    assert result.retry_after_seconds == retry_after
    if outcome != "sent":
        assert str(answer.status) in (result.reason or "")


async def test_a_timeout_is_retryable(sink: Sink) -> None:
    sink.answer(Answer(delay_seconds=2.0))
    async with http_client(timeout_seconds=0.5, guard=OPEN_GUARD) as impatient:
        result = await http_channel(WebhookFormat(), impatient).send(
            message(target={"url": sink.url}, signing_secret=SECRET)
        )
    assert result.outcome == "retryable"
    assert "timeout" in (result.reason or "")


async def test_a_refused_connection_is_retryable(client: HttpClient) -> None:
    result = await http_channel(WebhookFormat(), client).send(
        message(target={"url": f"http://127.0.0.1:{free_port()}/"}, signing_secret=SECRET)
    )
    assert result.outcome == "retryable"
    assert "connection failed" in (result.reason or "")


async def test_a_target_without_a_url_goes_to_the_configured_one(
    sink: Sink, client: HttpClient
) -> None:
    channel = http_channel(WebhookFormat(default_url=f"{sink.url}/default"), client)
    sent = message(target={}, signing_secret=SECRET)

    assert (await channel.send(sent)).outcome == "sent"

    (request,) = sink.received
    assert request.path == "/default"
    assert Webhook(SECRET).verify(request.body, request.headers)["data"]["body"] == sent.body


async def test_without_any_url_the_send_fails_for_good(client: HttpClient) -> None:
    result = await http_channel(WebhookFormat(), client).send(
        message(target={"user_id": "u-1"}, signing_secret=SECRET)
    )
    assert (result.outcome, result.reason) == ("permanent", NO_URL)
    assert NO_URL == "no webhook URL: set the step's url or MILEPOST_MESSAGING_WEBHOOK_URL"


async def test_the_guard_refuses_a_loopback_default_url_for_good(
    sink: Sink, client: HttpClient
) -> None:
    channel = http_channel(WebhookFormat(default_url=sink.url), client, guard=UrlGuard())
    result = await channel.send(message(target={}, signing_secret=SECRET))
    assert result.outcome == "permanent"
    assert "loopback" in (result.reason or "")
    assert sink.received == []


async def test_the_guard_refuses_a_loopback_url_for_good(sink: Sink, client: HttpClient) -> None:
    channel = http_channel(WebhookFormat(), client, guard=UrlGuard())
    result = await channel.send(message(target={"url": sink.url}, signing_secret=SECRET))
    assert result.outcome == "permanent"
    assert "loopback" in (result.reason or "")
    assert sink.received == []
