"""The email channel against a real SMTP server (aiosmtpd) started in the test."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes

import pytest

from tests.processes import free_port
from tests.services.messaging.channels.support import message
from tests.services.messaging.smtp_server import Handler, email_channel, running_smtp


@pytest.fixture
def smtp() -> Iterator[tuple[Handler, int]]:
    with running_smtp() as running:
        yield running


EMAIL = {"email": "ada@acme.example", "name": "Ada Admin"}


async def test_the_server_receives_the_message_with_its_idempotent_id(
    smtp: tuple[Handler, int],
) -> None:
    handler, port = smtp
    sent = message(channel="email", target=EMAIL, subject="完善资料", body="还差两步。")

    result = await email_channel(port).send(sent)

    assert result.outcome == "sent"
    assert result.provider_message_id == f"<{sent.delivery_id}@milepost>"
    (envelope,) = handler.messages
    assert envelope.mail_from == "cs@milepost.example"
    assert envelope.rcpt_tos == ["ada@acme.example"]
    email = message_from_bytes(envelope.content)
    assert email["Message-ID"] == f"<{sent.delivery_id}@milepost>"
    assert email["X-Milepost-Delivery"] == sent.delivery_id
    assert "Ada Admin" in email["To"]
    assert str(email["Subject"]) == "=?utf-8?b?5a6M5ZaE6LWE5paZ?="
    content = email.get_payload(decode=True)
    assert isinstance(content, bytes)
    assert content.decode().strip() == "还差两步。"


async def test_an_unsubscribe_link_becomes_a_one_click_list_unsubscribe_header(
    smtp: tuple[Handler, int],
) -> None:
    handler, port = smtp
    target = {**EMAIL, "unsubscribe_url": "https://mp.example.com/api/messaging/unsubscribe?t=x"}

    assert (
        await email_channel(port).send(message(channel="email", target=target))
    ).outcome == "sent"

    email = message_from_bytes(handler.messages[0].content)
    assert email["List-Unsubscribe"] == "<https://mp.example.com/api/messaging/unsubscribe?t=x>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_a_refused_recipient_is_a_permanent_bounce(smtp: tuple[Handler, int]) -> None:
    handler, port = smtp
    handler.rcpt_answer = "550 5.1.1 No such user"

    result = await email_channel(port).send(message(channel="email", target=EMAIL))

    assert (result.outcome, result.bounced) == ("permanent", True)
    assert "550" in (result.reason or "")
    assert handler.messages == []


async def test_a_rejected_message_is_permanent_but_no_bounce(smtp: tuple[Handler, int]) -> None:
    handler, port = smtp
    handler.data_answer = "554 5.6.0 Message content rejected"

    result = await email_channel(port).send(message(channel="email", target=EMAIL))

    assert (result.outcome, result.bounced) == ("permanent", False)
    assert "554" in (result.reason or "")


async def test_a_deferred_recipient_is_retryable(smtp: tuple[Handler, int]) -> None:
    handler, port = smtp
    handler.rcpt_answer = "451 4.7.1 Try again later"

    result = await email_channel(port).send(message(channel="email", target=EMAIL))

    assert (result.outcome, result.bounced) == ("retryable", False)
    assert "451" in (result.reason or "")


async def test_no_server_is_retryable() -> None:
    result = await email_channel(free_port()).send(message(channel="email", target=EMAIL))
    assert result.outcome == "retryable"


async def test_a_target_without_an_address_is_permanent(smtp: tuple[Handler, int]) -> None:
    result = await email_channel(smtp[1]).send(message(channel="email", target={"user_id": "x"}))
    assert result.outcome == "permanent"
