"""The outreach simulation: contacts learned from the replayed events, each trigger planned
at its own time as the live planner plans it, budgets counted across the whole replay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.messaging.simulation.service import SIMULATED_UNSUBSCRIBE_URL, OutreachSimulation
from shared.contracts.events import EventEnvelope
from tests.services.messaging.support import (
    POLICIES,
    T0,
    WORKSPACE,
    reference_playbook,
    trigger_envelope,
)

PLATFORM = reference_playbook("platform-merchant")


def event(kind: str, user: str, at: datetime = T0, **fields: Any) -> EventEnvelope:
    return EventEnvelope.model_validate(
        {
            "event_id": f"{kind}-{user}-{at.timestamp()}",
            "workspace_id": WORKSPACE,
            "message_id": f"{kind}-{user}",
            "type": kind,
            "user_id": user,
            "timestamp": at,
            "received_at": at,
            "source": "segment",
            **fields,
        }
    )


def admin_joins(user: str = "ann", **traits: Any) -> list[EventEnvelope]:
    return [
        event("group", user, account_id="acme", context={"traits": {"roles": ["admin"]}}),
        event("identify", user, traits={"email": f"{user}@acme.example", **traits}),
    ]


def simulation_with(events: list[EventEnvelope]) -> OutreachSimulation:
    simulation = OutreachSimulation([PLATFORM], POLICIES)
    for item in events:
        simulation.observe(item)
    return simulation


def test_a_trigger_reaches_the_contacts_learned_so_far_with_the_rendered_message() -> None:
    simulation = simulation_with(admin_joins())
    simulation.trigger(trigger_envelope())
    [outreach] = simulation.outreach
    [message] = outreach.messages
    assert (message.contact_id, message.role, message.channel) == ("ann", "admin", "email")
    assert message.target["email"] == "ann@acme.example"
    assert message.status == "queued"
    assert message.body.startswith('Hello, "complete_profile" for acme is overdue.')
    assert message.target["unsubscribe_url"] == SIMULATED_UNSUBSCRIBE_URL


def test_nobody_known_yet_means_nobody_reached() -> None:
    simulation = OutreachSimulation([PLATFORM], POLICIES)
    simulation.trigger(trigger_envelope())
    [outreach] = simulation.outreach
    assert outreach.messages == ()


def test_consent_and_quiet_hours_decide_as_they_would_live() -> None:
    simulation = simulation_with(admin_joins(consent={"onboarding": False}))
    simulation.trigger(trigger_envelope())
    [message] = simulation.outreach[0].messages
    assert (message.status, message.reason) == (
        "suppressed",
        "consent: the contact opted out of onboarding",
    )
    late = simulation_with(admin_joins("bo", timezone="Asia/Shanghai"))
    late.trigger(trigger_envelope(at=T0 + timedelta(hours=13)))  # 23:00 in Shanghai
    [deferred] = late.outreach[0].messages
    assert deferred.status == "deferred"
    assert deferred.reason is not None
    assert "quiet hours" in deferred.reason


def test_budgets_count_what_the_replay_planned_before() -> None:
    simulation = simulation_with(admin_joins())
    for number in range(5):
        simulation.trigger(
            trigger_envelope(trigger_id=f"t-{number}", at=T0 + timedelta(hours=number))
        )
    statuses = [o.messages[0].status for o in simulation.outreach]
    assert statuses[:2] == ["queued", "queued"]
    assert "suppressed" in statuses[2:]
    reason = simulation.outreach[-1].messages[0].reason
    assert reason is not None
    assert reason.startswith("budget:")


def test_a_contact_moving_account_is_reached_only_in_the_new_one() -> None:
    simulation = simulation_with(
        [*admin_joins(), event("group", "ann", account_id="other", context={})]
    )
    assert simulation.people_of(WORKSPACE, "acme") == []
    assert [c.contact_id for c in simulation.people_of(WORKSPACE, "other")] == ["ann"]


def test_the_account_owner_comes_last_from_crm_account_facts() -> None:
    crm = event(
        "crm",
        "crm",
        event="milepost.crm.account.upserted",
        account_id="acme",
        properties={"owner_email": "csm@milepost.example"},
    )
    simulation = simulation_with([*admin_joins(), crm])
    people = simulation.people_of(WORKSPACE, "acme")
    assert [c.contact_id for c in people] == ["ann", "owner:csm@milepost.example"]
    assert people[-1].is_account_owner
