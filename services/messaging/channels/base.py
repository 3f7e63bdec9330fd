"""The channel contract: a message goes in, a result comes out.

A channel never raises for a failed send: it answers :class:`SendResult` with ``sent``,
``retryable`` (a timeout, a 5xx, a rate limit: the dispatcher tries again later) or
``permanent`` (a bounce, a refused URL, a 4xx: retrying cannot help). ``bounced`` marks
a permanent failure that says the contact's address on the channel is dead (an email
recipient refused with 5xx): the dispatcher records it on the contact and follows up on
the step's next channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from services.messaging.deliveries.message import Message

Outcome = Literal["sent", "retryable", "permanent"]


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    reason: str | None = None
    retry_after_seconds: float | None = None
    """The provider's own wait (``Retry-After``, a rate-limit answer), when it gave one."""
    bounced: bool = False
    """Permanent because the recipient's address is refused (see the module docstring)."""

    @classmethod
    def sent(cls, provider_message_id: str | None) -> SendResult:
        return cls("sent", provider_message_id=provider_message_id)

    @classmethod
    def retryable(cls, reason: str, retry_after_seconds: float | None = None) -> SendResult:
        return cls("retryable", reason=reason, retry_after_seconds=retry_after_seconds)

    @classmethod
    def permanent(cls, reason: str, *, bounced: bool = False) -> SendResult:
        return cls("permanent", reason=reason, bounced=bounced)


class Channel(Protocol):
    """Sends one message; see the module docstring for the result's meaning."""

    async def send(self, message: Message) -> SendResult:
        """One attempt at ``message`` (its ``delivery_id`` is the idempotency key providers
        receive: ``Idempotency-Key``, ``webhook-id``, the email's ``Message-ID``)."""
