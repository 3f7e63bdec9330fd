"""Facts from CRM events and group calls: contract, renewal, invoice, tickets, roles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.scoring.evaluation.facts import (
    AccountFacts,
    Outcome,
    facts_from_json,
    facts_to_json,
    numeric,
    stated_facts,
    with_event,
)
from shared.contracts.events import EventEnvelope, EventType

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def crm(kind: str, **data: Any) -> EventEnvelope:
    return EventEnvelope(
        event_id=kind,
        workspace_id="ws",
        message_id=kind,
        type=EventType.CRM,
        event=f"milepost.crm.{kind}",
        account_id="acme",
        properties={"account_id": "acme", "attributes": {}, **data},
        timestamp=AT,
        received_at=AT,
        source="crm:test",
    )


def apply(facts: AccountFacts, event: EventEnvelope, roles: tuple[str, ...] = ()) -> AccountFacts:
    return with_event(facts, event, stated_facts(event), roles)


def test_a_signed_contract_states_value_cost_seats_and_renewal() -> None:
    event = crm(
        "contract.signed",
        contract_id="c1",
        value="12000.50",
        currency="EUR",
        starts_on="2026-01-01",
        ends_on="2027-01-01",
        seats=25,
        acquisition_cost="9000",
    )
    assert stated_facts(event) == {
        "crm.contract_value": 12000.5,
        "crm.currency": "EUR",
        "crm.acquisition_cost": 9000.0,
        "crm.seats": 25.0,
        "crm.contract_started_at": int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()),
        "crm.contract_ends_at": int(datetime(2027, 1, 1, tzinfo=UTC).timestamp()),
        "crm.renewal_at": int(datetime(2027, 1, 1, tzinfo=UTC).timestamp()),
    }
    assert "crm.currency" not in numeric(stated_facts(event))


def test_invoices_set_the_status_and_the_latest_wins() -> None:
    facts = apply(AccountFacts(), crm("invoice.overdue", invoice_id="i1"))
    assert facts.values["crm.invoice_status"] == "overdue"
    facts = apply(facts, crm("invoice.paid", invoice_id="i1"))
    assert facts.values["crm.invoice_status"] == "paid"


def test_open_tickets_are_those_opened_and_not_closed() -> None:
    facts = AccountFacts()
    assert facts.open_tickets is None
    for event in (
        crm("ticket.opened", ticket_id="t1"),
        crm("ticket.opened", ticket_id="t2"),
        crm("ticket.opened", ticket_id="t1"),
        crm("ticket.closed", ticket_id="t1"),
    ):
        facts = apply(facts, event)
    assert facts.open_tickets == ("t2",)


def test_renewals_and_cancellations_are_kept_as_outcomes() -> None:
    facts = apply(
        AccountFacts(),
        crm(
            "subscription.renewed", subscription_id="s1", renewed_until="2027-03-01", value="15000"
        ),
    )
    facts = apply(
        facts, crm("subscription.cancelled", subscription_id="s1", effective_on="2027-03-01")
    )
    until = int(datetime(2027, 3, 1, tzinfo=UTC).timestamp())
    assert facts.outcomes == (
        Outcome("renewed", int(AT.timestamp()), 15000.0, until),
        Outcome("cancelled", int(AT.timestamp()), until=until),
    )
    assert facts.values["crm.cancelled_at"] == until


def test_group_traits_and_contact_roles() -> None:
    group = EventEnvelope(
        event_id="g",
        workspace_id="ws",
        message_id="g",
        type=EventType.GROUP,
        account_id="acme",
        user_id="u1",
        traits={"name": "Acme", "business_type": "platform", "plan": "growth", "nested": {}},
        timestamp=AT,
        received_at=AT,
        source="segment",
    )
    facts = apply(AccountFacts(), group, ("decision_maker",))
    assert facts.values == {
        "account.name": "Acme",
        "account.business_type": "platform",
        "account.plan": "growth",
    }
    assert facts.roles == {"decision_maker"}


def test_facts_survive_storage() -> None:
    facts = AccountFacts(
        {"crm.seats": 10.0, "crm.invoice_status": "paid"},
        frozenset({"admin"}),
        ("t1",),
        (Outcome("renewed", 5, 100.0, 9),),
        frozenset({"platform-merchant"}),
    )
    assert facts_from_json(facts_to_json(facts)) == facts
    assert facts_from_json(facts_to_json(AccountFacts())) == AccountFacts()


def test_an_event_stating_nothing_leaves_the_facts_as_they_were() -> None:
    facts = AccountFacts({"crm.seats": 3.0})
    assert apply(facts, crm("deal.stage_changed", deal_id="d")) is facts
    assert apply(facts, crm("ticket.closed", ticket_id="none")).open_tickets == ()
