"""The outreach report: triggers that reach someone under their day, the rest counted."""

from __future__ import annotations

from datetime import timedelta

from services.messaging.simulation.report import outreach_json, outreach_text
from services.messaging.simulation.service import OutreachSimulation
from tests.services.messaging.simulation.test_service import admin_joins, simulation_with
from tests.services.messaging.support import POLICIES, T0, reference_playbook, trigger_envelope


def test_days_count_from_the_first_trigger_that_reaches_someone() -> None:
    simulation = simulation_with(admin_joins())
    simulation.trigger(trigger_envelope("node_completed", trigger_id="t-0"))  # no step matches
    simulation.trigger(trigger_envelope(trigger_id="t-1", at=T0 + timedelta(days=1)))
    simulation.trigger(
        trigger_envelope(
            "escalation", trigger_id="t-2", payload={"action": "task"}, at=T0 + timedelta(days=4)
        )
    )
    text = outreach_text(simulation.outreach, ["platform-merchant-outreach v1"])
    assert text.startswith("Outreach: 3 triggers (1 match no playbook step), 1 messages")
    assert "day 0 · 2026-03-03\n  02:00  acme  node_overdue account_setup/complete_profile" in text
    assert "-> admin ann <ann@acme.example> via email [platform-merchant-outreach/" in text
    assert "day 3 · 2026-03-06" in text
    assert "-> task for no account owner known" in text
    [_, overdue, escalation] = outreach_json(simulation.outreach)
    assert overdue["messages"][0]["status"] == "queued"
    assert escalation["tasks"][0]["owner"] is None


def test_no_playbook_step_for_any_trigger_says_nothing_is_sent() -> None:
    simulation = OutreachSimulation([reference_playbook("saas-account")], POLICIES)
    simulation.trigger(trigger_envelope("node_completed"))
    assert "no playbook step matches any trigger: nothing is sent" in outreach_text(
        simulation.outreach, []
    )
