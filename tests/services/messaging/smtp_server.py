"""A real SMTP server (aiosmtpd) for the messaging tests: it keeps every message, or
answers each recipient with a scripted refusal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller

from services.messaging.channels.smtp import EmailChannel
from tests.processes import free_port


class Handler:
    """Accepts mail, or answers a recipient with ``rcpt_answer`` or the message with
    ``data_answer``."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.rcpt_answer: str | None = None
        self.data_answer: str | None = None

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.rcpt_answer:
            return self.rcpt_answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_answer:
            return self.data_answer
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@contextmanager
def running_smtp() -> Iterator[tuple[Handler, int]]:
    """The server's handler and port, listening on 127.0.0.1 for the ``with`` block."""
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def email_channel(port: int) -> EmailChannel:
    return EmailChannel(
        host="127.0.0.1", port=port, sender="Milepost <cs@milepost.example>", timeout_seconds=2
    )
