"""A tiny growth path and a hand-made event file whose simulation is counted by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.contracts.events import EventEnvelope, EventType, event_id_for

PATH = """
id: tiny
name: Tiny path
business_type: platform
enrol_when: type == "group"
stages:
  - id: start
    name: Start
    notify: [admin]
    nodes:
      - id: listing
        name: First listing
        complete_when: happened("Listing Published")
        due: P2D
        notify: [admin]
        escalations:
          - {at: P4D, notify: [account_owner], action: task}
      - id: orders
        name: Two orders
        complete_when: count("Order Completed") >= 2 or sum("Order Completed", "amount") >= 1000
        notify: [admin, end_user]
  - id: done
    name: Done
    notify: [decision_maker]
"""
CURRENT = PATH.replace('count("Order Completed") >= 2', 'count("Order Completed") >= 3')
WORKSPACE = "ws_tiny"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def event(
    day: float,
    kind: EventType,
    name: str | None,
    user: str,
    account: str | None,
    message_id: str,
    **fields: Any,
) -> str:
    at = T0 + timedelta(days=day)
    return EventEnvelope(
        event_id=event_id_for(WORKSPACE, message_id),
        workspace_id=WORKSPACE,
        message_id=message_id,
        type=kind,
        event=name,
        user_id=user,
        account_id=account,
        timestamp=at,
        received_at=at,
        source="segment",
        **fields,
    ).model_dump_json()


def lines() -> list[str]:
    """acme lists on day 1 and has its two orders (from the cashier, who sends only a user
    id) on days 2 and 3, the first with an amount that is no number; bolt never lists. A
    stranger's order belongs to no account, and one line is not an envelope."""
    group, track = EventType.GROUP, EventType.TRACK
    return [
        event(0, group, None, "u-a1", "acme", "m1", context={"traits": {"roles": ["admin"]}}),
        event(0.125, group, None, "u-b1", "bolt", "m2"),
        event(1, track, "Listing Published", "u-a1", "acme", "m3"),
        event(1.05, group, None, "u-cash", "acme", "m4", context={"traits": {"role": "end_user"}}),
        '{"this": "is not an envelope"}',
        event(2, track, "Order Completed", "u-cash", None, "m5", properties={"amount": "n/a"}),
        event(2.5, track, "Order Completed", "u-stranger", None, "m6"),
        "",
        event(3, track, "Order Completed", "u-cash", None, "m7", properties={"amount": 300}),
    ]
