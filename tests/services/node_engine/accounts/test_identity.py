"""Attribution of events to accounts and roles, and the facts events state. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.node_engine.accounts.identity import observation_of
from shared.contracts import EventEnvelope, EventType
from shared.identity import Membership, attribute, facts_from, membership_from

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def midnight(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())


def envelope(
    type: EventType,
    *,
    account: str | None = "acme",
    user: str | None = "u1",
    event: str | None = None,
    **fields: Any,
) -> EventEnvelope:
    return EventEnvelope(
        event_id="e1",
        workspace_id="ws",
        message_id="m1",
        type=type,
        event=event,
        account_id=account,
        user_id=user,
        timestamp=T0,
        received_at=T0,
        source="segment",
        **fields,
    )


@pytest.mark.parametrize(
    ("event", "roles"),
    [
        (
            envelope(EventType.GROUP, context={"traits": {"roles": ["admin", "end_user", "cto"]}}),
            {"admin", "end_user"},
        ),
        (
            envelope(EventType.GROUP, context={"traits": {"role": "decision_maker"}}),
            {"decision_maker"},
        ),
        (envelope(EventType.GROUP), set()),
        (envelope(EventType.IDENTIFY, traits={"role": "gatekeeper"}), {"gatekeeper"}),
        (
            envelope(
                EventType.CRM,
                event="milepost.crm.contact.upserted",
                properties={"roles": ["influencer"]},
            ),
            {"influencer"},
        ),
    ],
    ids=["group roles", "group role", "group without roles", "identify", "crm contact"],
)
def test_memberships_come_from_group_identify_and_crm_contacts(
    event: EventEnvelope, roles: set[str]
) -> None:
    assert membership_from(event) == Membership("acme", frozenset(roles))


def test_track_calls_and_calls_without_an_account_state_no_membership() -> None:
    assert membership_from(envelope(EventType.TRACK, event="Order Completed")) is None
    assert (
        membership_from(envelope(EventType.IDENTIFY, account=None, traits={"role": "admin"}))
        is None
    )


def test_an_event_with_only_a_user_id_belongs_to_the_users_account_with_its_roles() -> None:
    admin = Membership("acme", frozenset({"admin"}))
    attribution = attribute(envelope(EventType.TRACK, account=None, event="User Invited"), admin)
    assert (attribution.account_id, attribution.actor_roles, attribution.learned) == (
        "acme",
        frozenset({"admin"}),
        None,
    )
    assert attribute(envelope(EventType.TRACK, account=None), None).account_id is None


def test_roles_count_only_in_the_users_own_account_and_are_kept_when_a_call_states_none() -> None:
    admin = Membership("acme", frozenset({"admin"}))
    elsewhere = attribute(envelope(EventType.TRACK, account="globex"), admin)
    assert (elsewhere.account_id, elsewhere.actor_roles) == ("globex", frozenset())
    regroup = attribute(envelope(EventType.GROUP), admin)
    assert regroup.learned == admin
    moved = attribute(envelope(EventType.GROUP, account="globex"), admin)
    assert moved.learned == Membership("globex", frozenset())


@pytest.mark.parametrize(
    ("name", "properties", "facts"),
    [
        (
            "deal.stage_changed",
            {"stage": "won", "amount": "1200.50"},
            {"crm.deal_stage": "won", "crm.deal_amount": 1200.5},
        ),
        (
            "contract.signed",
            {"value": "9000", "seats": 20, "ends_on": "2027-03-01"},
            {
                "crm.contract_status": "signed",
                "crm.contract_value": 9000.0,
                "crm.seats": 20,
                "crm.renewal_at": midnight(2027, 3, 1),
            },
        ),
        (
            "subscription.renewed",
            {"renewed_until": "2028-03-01"},
            {"crm.subscription_status": "active", "crm.renewal_at": midnight(2028, 3, 1)},
        ),
        (
            "subscription.cancelled",
            {"effective_on": "2027-01-01"},
            {"crm.subscription_status": "cancelled", "crm.cancels_at": midnight(2027, 1, 1)},
        ),
        ("invoice.paid", {"amount": "10"}, {"crm.invoice_status": "paid"}),
        (
            "invoice.overdue",
            {"days_overdue": 12},
            {"crm.invoice_status": "overdue", "crm.days_overdue": 12},
        ),
        (
            "account.upserted",
            {"business_type": "service", "attributes": {"plan": "pro", "blob": {"x": 1}}},
            {"account.business_type": "service", "account.plan": "pro"},
        ),
        ("ticket.opened", {"ticket_id": "t1"}, {}),
    ],
)
def test_crm_events_state_account_facts(
    name: str, properties: dict[str, Any], facts: dict[str, Any]
) -> None:
    assert (
        facts_from(envelope(EventType.CRM, event=f"milepost.crm.{name}", properties=properties))
        == facts
    )


def test_group_traits_become_account_facts_and_the_observation_carries_them() -> None:
    event = envelope(
        EventType.GROUP, traits={"business_type": "platform", "nested": {"no": 1}, "size": 40}
    )
    observation = observation_of(event, "acme", frozenset({"admin"}))
    assert observation.facts == {"account.business_type": "platform", "account.size": 40}
    assert (observation.account_id, observation.actor_roles, observation.occurred_at) == (
        "acme",
        frozenset({"admin"}),
        int(T0.timestamp()),
    )
