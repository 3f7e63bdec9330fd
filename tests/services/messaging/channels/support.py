"""Messages and channels for the channel tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.messaging.channels.base import OutboundMessage
from services.messaging.channels.guard import UrlGuard
from services.messaging.channels.http import HttpChannel, HttpClient, HttpFormat
from shared.clock import FrozenClock

NOW = datetime.now(UTC).replace(microsecond=0)
"""Real time: receivers (the Standard Webhooks library) check timestamps against it."""
OPEN_GUARD = UrlGuard(allow_private=True)


def message(**fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "delivery_id": "dlv_0123456789abcdef0123456789abcdef",
        "workspace_id": "ws_test",
        "account_id": "acme",
        "trigger_id": "t-1",
        "contact_id": "c-admin",
        "channel": "webhook",
        "target": {},
        "subject": "Finish your profile",
        "body": "Two steps left.",
        "category": "onboarding",
        "attempt": 1,
        "planned_at": NOW,
        **fields,
    }
    return OutboundMessage(**values)


def http_channel(
    spelling: HttpFormat, client: HttpClient, guard: UrlGuard = OPEN_GUARD
) -> HttpChannel:
    return HttpChannel(spelling, client=client, guard=guard, clock=FrozenClock(NOW))
