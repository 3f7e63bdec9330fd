"""Consent per category, and signed unsubscribe links. Pure.

A contact answers per category (``consent: {marketing: false}`` in traits or a CRM
contact, or an unsubscribe link): an explicit ``false`` refuses every message of that
category; categories listed as opt-in (``MILEPOST_MESSAGING_OPT_IN_CATEGORIES``) also
refuse contacts who never answered. Tasks for the account owner are not messages to the
contact and are never refused.

An unsubscribe link carries a token: the workspace, contact, category and expiry as
base64url JSON, a dot, and the HMAC-SHA256 of that text under the workspace-wide secret
(``MILEPOST_MESSAGING_UNSUBSCRIBE_SECRET``). Verification checks the signature in constant
time, then the expiry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from services.messaging.contacts.directory import Contact
from services.messaging.errors import UnsubscribeRejected

MAX_TOKEN_CHARS = 2048


def consent_refusal(
    contact: Contact, category: str, *, opt_in_categories: Collection[str]
) -> str | None:
    """Why ``contact`` may not receive a message of ``category``; ``None`` when they may."""
    answer = contact.consent.get(category)
    if answer is False:
        return f"consent: the contact opted out of {category}"
    if answer is None and category in opt_in_categories:
        return f"consent: {category} needs an opt-in and the contact has not given one"
    return None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """What a verified token asks: opt ``contact_id`` out of ``category``."""

    workspace_id: str
    contact_id: str
    category: str
    expires_at: datetime


def unsubscribe_token(
    secret: bytes,
    *,
    workspace_id: str,
    contact_id: str,
    category: str,
    now: datetime,
    valid_for: timedelta,
) -> str:
    """A signed token for an unsubscribe link, valid for ``valid_for`` from ``now``."""
    claims = {
        "w": workspace_id,
        "c": contact_id,
        "k": category,
        "e": int((now + valid_for).timestamp()),
    }
    payload = _encode(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS))
    return f"{payload}.{_encode(_sign(secret, payload))}"


def verify_unsubscribe(secret: bytes, token: str, *, now: datetime) -> Unsubscribe:
    """The request a token carries; :class:`UnsubscribeRejected` when it is malformed, its
    signature does not match, or it has expired."""
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1 or not token.isascii():
        raise UnsubscribeRejected("the unsubscribe link is malformed")
    payload, signature = token.split(".")
    try:
        given = _decode(signature)
    except (binascii.Error, ValueError) as exc:
        raise UnsubscribeRejected("the unsubscribe link is malformed") from exc
    if not hmac.compare_digest(given, _sign(secret, payload)):
        raise UnsubscribeRejected("the unsubscribe link's signature does not match")
    try:
        claims = orjson.loads(_decode(payload))
        request = Unsubscribe(
            str(claims["w"]),
            str(claims["c"]),
            str(claims["k"]),
            datetime.fromtimestamp(int(claims["e"]), UTC),
        )
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise UnsubscribeRejected("the unsubscribe link is malformed") from exc
    if request.expires_at <= now:
        raise UnsubscribeRejected(
            f"the unsubscribe link expired at {request.expires_at:%Y-%m-%d %H:%M} UTC"
        )
    return request


def _sign(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unsubscribe_url(public_url: str, token: str) -> str:
    """The link a message carries: the unsubscribe endpoint with the token."""
    return f"{public_url.rstrip('/')}/api/messaging/unsubscribe?token={token}"
