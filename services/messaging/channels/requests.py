"""HTTP requests as plain values, and what an HTTP answer means for a send. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from services.messaging.channels.base import SendResult


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A POST: where, with which headers, and the exact body bytes (signatures cover them)."""

    url: str
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    """Lower-case names."""
    content: bytes


def retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), if any."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None


def by_status(answer: HttpAnswer, now: datetime, provider_message_id: str | None) -> SendResult:
    """The usual reading of an HTTP status: 2xx sent; 408, 425, 429 and 5xx retryable
    (honouring ``Retry-After``); any other status permanent."""
    if 200 <= answer.status < 300:
        return SendResult.sent(provider_message_id)
    reason = f"HTTP {answer.status}: {answer.content[:200].decode('utf-8', 'replace')}"
    if answer.status in (408, 425, 429) or answer.status >= 500:
        return SendResult.retryable(reason, retry_after(answer.headers, now))
    return SendResult.permanent(reason)
