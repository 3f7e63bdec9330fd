"""The directory learns people from identify, group and CRM events, and owners from CRM
accounts; stated values replace known ones and unusable ones are ignored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.messaging.contacts.directory import (
    Contact,
    ContactFacts,
    OwnerFacts,
    facts_from,
    merge,
    owner_contact,
)
from shared.contracts.events import EventEnvelope, EventType, event_id_for

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def envelope(type: EventType, *, event: str | None = None, **fields: Any) -> EventEnvelope:
    values: dict[str, Any] = {"account_id": "acme", "user_id": "u1", **fields}
    return EventEnvelope(
        event_id=event_id_for("ws", "m1"),
        workspace_id="ws",
        message_id="m1",
        type=type,
        event=event,
        timestamp=T0,
        received_at=T0,
        source="segment",
        **values,
    )


def test_an_identify_call_states_the_persons_traits() -> None:
    facts = facts_from(
        envelope(
            EventType.IDENTIFY,
            traits={
                "name": "Li Wei",
                "email": "li.wei@acme.example",
                "roles": ["decision_maker", "admin", "astronaut"],
                "locale": "zh-CN",
                "timezone": "Asia/Shanghai",
                "chat_app_ids": {"feishu": "ou_7d8a6e", "myspace": "x"},
                "consent": {"marketing": False, "Bad Key": True},
            },
        )
    )
    assert facts == ContactFacts(
        "ws",
        "u1",
        account_id="acme",
        name="Li Wei",
        email="li.wei@acme.example",
        roles=frozenset({"decision_maker", "admin"}),
        locale="zh-CN",
        timezone="Asia/Shanghai",
        chat_app_ids={"feishu": "ou_7d8a6e"},
        consent={"marketing": False},
    )


def test_unusable_traits_are_ignored_and_the_rest_is_kept() -> None:
    facts = facts_from(
        envelope(
            EventType.IDENTIFY,
            traits={
                "email": "not-an-address",
                "timezone": "Mars/Olympus",
                "locale": "EN_us",
                "name": "Ann",
            },
        )
    )
    assert isinstance(facts, ContactFacts)
    assert (facts.email, facts.timezone, facts.locale, facts.name) == (None, None, None, "Ann")


def test_a_group_call_places_the_user_in_the_account_with_its_roles() -> None:
    facts = facts_from(envelope(EventType.GROUP, context={"traits": {"role": "admin"}}))
    assert facts == ContactFacts("ws", "u1", account_id="acme", roles=frozenset({"admin"}))


def test_a_crm_contact_is_a_person_and_a_crm_account_names_its_owner() -> None:
    contact = facts_from(
        envelope(
            EventType.CRM,
            event="milepost.crm.contact.upserted",
            user_id="c-9",
            properties={
                "account_id": "acme",
                "contact_id": "c-9",
                "roles": ["end_user"],
                "phone": "+86 138 0000 0000",
                "chat_app_ids": {"wecom": "w-9", "slack": None},
            },
        )
    )
    assert isinstance(contact, ContactFacts)
    assert (contact.contact_id, contact.roles, contact.phone, dict(contact.chat_app_ids)) == (
        "c-9",
        frozenset({"end_user"}),
        "+86 138 0000 0000",
        {"wecom": "w-9"},
    )
    owner = facts_from(
        envelope(
            EventType.CRM,
            event="milepost.crm.account.upserted",
            properties={
                "account_id": "acme",
                "owner_email": "CSM@Milepost.example",
                "owner_name": "Zhao",
            },
        )
    )
    assert owner == OwnerFacts("ws", "acme", "CSM@Milepost.example", "Zhao")
    assert owner.contact_id == "owner:csm@milepost.example"


def test_other_events_state_nothing() -> None:
    assert facts_from(envelope(EventType.TRACK, event="Order Completed")) is None
    assert facts_from(envelope(EventType.IDENTIFY, user_id=None, anonymous_id="a")) is None
    assert facts_from(envelope(EventType.CRM, event="milepost.crm.invoice.paid")) is None


def test_merging_keeps_what_a_call_does_not_state() -> None:
    known = Contact(
        "ws",
        "u1",
        account_id="acme",
        email="old@acme.example",
        roles=frozenset({"admin"}),
        consent={"tips": False},
        chat_app_ids={"feishu": "f1"},
        bounced=frozenset({"email"}),
    )
    after = merge(
        known,
        ContactFacts(
            "ws", "u1", locale="en", consent={"marketing": True}, chat_app_ids={"slack": "s1"}
        ),
    )
    assert after.email == "old@acme.example"
    assert after.roles == {"admin"}
    assert after.account_id == "acme"
    assert after.consent == {"tips": False, "marketing": True}
    assert after.chat_app_ids == {"feishu": "f1", "slack": "s1"}
    assert after.bounced == {"email"}
    moved = merge(
        after, ContactFacts("ws", "u1", email="new@acme.example", roles=frozenset({"end_user"}))
    )
    assert moved.roles == {"end_user"}
    assert moved.bounced == frozenset(), "a new address is no longer bounced"


def test_an_owner_is_a_workspace_contact_with_the_account_owner_role() -> None:
    owner = owner_contact(None, OwnerFacts("ws", "acme", "csm@milepost.example", "Zhao"))
    assert owner.is_account_owner
    assert owner.account_id is None
    assert owner.roles == {"account_owner"}
    assert owner.contact_id == "owner:csm@milepost.example"
