"""Hand-made event envelopes at explicit times, for the churn model's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.contracts.events import EventEnvelope, EventType, event_id_for

WORKSPACE = "ws_test"


def envelope(
    at: datetime,
    name: str | None,
    *,
    account: str | None = "acme",
    user: str | None = "ann",
    kind: EventType = EventType.TRACK,
    properties: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    workspace: str = WORKSPACE,
) -> EventEnvelope:
    message_id = f"{account}-{user}-{name}-{at.isoformat()}"
    return EventEnvelope(
        event_id=event_id_for(workspace, message_id),
        workspace_id=workspace,
        message_id=message_id,
        type=kind,
        event=name,
        account_id=account,
        user_id=user,
        properties=properties or {},
        context=context or {},
        timestamp=at,
        received_at=at,
        source="crm:test" if kind is EventType.CRM else "segment",
    )


def joined(at: datetime, user: str, role: str, account: str = "acme") -> EventEnvelope:
    return envelope(
        at,
        None,
        account=account,
        user=user,
        kind=EventType.GROUP,
        context={"traits": {"roles": [role]}},
    )


def crm(at: datetime, name: str, account: str = "acme", **data: Any) -> EventEnvelope:
    return envelope(
        at,
        f"milepost.crm.{name}",
        account=account,
        user=None,
        kind=EventType.CRM,
        properties={"account_id": account, **data},
    )


def utc(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)
