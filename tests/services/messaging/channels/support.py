"""Messages and channels for the channel tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from services.messaging.channels.guard import UrlGuard
from services.messaging.channels.http import HttpChannel, HttpClient, HttpFormat
from services.messaging.deliveries.message import Message
from shared.clock import FrozenClock

NOW = datetime.now(UTC).replace(microsecond=0)
"""Real time: receivers (the Standard Webhooks library) check timestamps against it."""


def resolving_to(*addresses: str, allow_loopback: bool = False) -> UrlGuard:
    """A guard whose every name resolves to ``addresses`` (none: does not resolve)."""

    async def resolve(host: str, port: int) -> Sequence[str]:
        if not addresses:
            raise OSError("Name or service not known")
        return addresses

    return UrlGuard(allow_loopback=allow_loopback, resolve=resolve)


INTERNAL_URLS = (
    "http://169.254.169.254/latest",
    "http://100.100.100.200/latest/meta-data",
    "http://[2002:a9fe:a9fe::1]/x",
    "http://[fec0::1]/x",
    "http://[::ffff:100.100.100.200]/x",
    "http://192.0.0.192/x",
)
"""URLs to cloud metadata and other internal addresses the guard once let through."""

OPEN_GUARD = resolving_to("127.0.0.1", allow_loopback=True)
"""Lets the tests' local servers through; every name resolves to 127.0.0.1."""


def message(**fields: Any) -> Message:
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
        "step_id": "onboarding/nudge",
        "priority": 1,
        "attempt": 1,
        "planned_at": NOW,
        "not_before": NOW,
        **fields,
    }
    return Message(**values)


def http_channel(
    spelling: HttpFormat, client: HttpClient, guard: UrlGuard = OPEN_GUARD
) -> HttpChannel:
    return HttpChannel(spelling, client=client, guard=guard, clock=FrozenClock(NOW))
