"""Webhooks signed per the Standard Webhooks specification (standardwebhooks.com). Pure.

Each request carries ``webhook-id`` (the delivery id: the same on every retry, so
receivers deduplicate on it), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: ``v1,`` + base64 HMAC-SHA256 over ``{id}.{timestamp}.{body}``
keyed with the base64-decoded part of the ``whsec_`` secret. The body is
``{"type", "timestamp", "data"}``, its ``timestamp`` the time the delivery was planned:
every attempt of one delivery sends the same bytes (only the headers' send time and
signature change).

The request goes to the target's ``url`` (a playbook step's ``url``, a subscription's, the
CRM's), else to the configured default (``MILEPOST_MESSAGING_WEBHOOK_URL``); with neither,
the send fails for good with :data:`NO_URL`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.messaging.channels.base import SendResult
from services.messaging.channels.requests import HttpAnswer, HttpRequest, by_status
from services.messaging.deliveries.message import Message

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
NO_URL = "no webhook URL: set the step's url or MILEPOST_MESSAGING_WEBHOOK_URL"


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ``ValueError`` when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a Standard Webhooks secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_request(
    url: str,
    *,
    message_id: str,
    secret: str,
    event_type: str,
    data: str,
    occurred_at: datetime,
    now: datetime,
) -> HttpRequest:
    """The request: ``data`` (a JSON document, spliced in as it is) and ``occurred_at`` in
    the body, ``now`` (the send) in the signed headers."""
    timestamp = int(now.timestamp())
    head = _json({"type": event_type, "timestamp": occurred_at.isoformat()})
    body = f'{head[:-1]},"data":{data}}}'.encode()
    return HttpRequest(
        url,
        {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, message_id, timestamp, body),
            "idempotency-key": message_id,
        },
        body,
    )


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def webhook_data(message: Message) -> tuple[str, str]:
    """The event type and data (a JSON document) of a delivery on the webhook channel.

    A target with ``event_type`` (task pushes, subscriptions) carries a JSON document as
    its body, sent as the data as it is; otherwise the event is ``message.created`` with
    the rendered message."""
    event_type = message.target.get("event_type")
    if event_type:
        return event_type, message.body
    return "message.created", _json(
        {
            "delivery_id": message.delivery_id,
            "workspace_id": message.workspace_id,
            "account_id": message.account_id,
            "trigger_id": message.trigger_id,
            "contact_id": message.contact_id,
            "category": message.category,
            "subject": message.subject,
            "body": message.body,
        }
    )


def webhook_request(message: Message, now: datetime, default_url: str | None = None) -> HttpRequest:
    """The signed request; ``ValueError`` without a secret or a URL (see the module)."""
    if message.signing_secret is None:
        raise ValueError("a webhook delivery needs a signing secret")
    url = message.target.get("url") or default_url
    if not url:
        raise ValueError(NO_URL)
    event_type, data = webhook_data(message)
    return signed_request(
        url,
        message_id=message.delivery_id,
        secret=message.signing_secret,
        event_type=event_type,
        data=data,
        occurred_at=message.planned_at,
        now=now,
    )


def webhook_result(answer: HttpAnswer, now: datetime) -> SendResult:
    """2xx sent (the receiver's ``x-request-id`` as the provider id, when it sends one);
    410 Gone and other 4xx permanent; 408/429/5xx retryable."""
    return by_status(answer, now, answer.headers.get("x-request-id"))


@dataclass(frozen=True, slots=True)
class WebhookFormat:
    """The webhook channel's request and answer (see the module docstring)."""

    default_url: str | None = None

    def request(self, message: Message, now: datetime) -> HttpRequest:
        return webhook_request(message, now, self.default_url)

    def result(self, answer: HttpAnswer, now: datetime) -> SendResult:
        return webhook_result(answer, now)
