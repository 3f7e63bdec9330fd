"""Contact-pressure budgets: per contact and per account role, with each priority filling
only its share, so a renewal-risk message beats a tip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.messaging.playbooks.schemas import Priority
from services.messaging.policies.budgets import (
    BudgetLimits,
    Planned,
    Pressure,
    PressureBook,
    allowed,
    budget_refusal,
)

LIMITS = BudgetLimits(per_contact=3, per_account_role=6, window=timedelta(days=7))


@pytest.mark.parametrize(
    ("priority", "share"), [("low", 1), ("normal", 2), ("high", 3), ("critical", None)]
)
def test_each_priority_fills_its_share_of_a_cap(priority: Priority, share: int | None) -> None:
    assert allowed(3, priority) == share


def test_a_zero_cap_admits_nothing_but_critical() -> None:
    assert allowed(0, "high") == 0
    assert allowed(0, "critical") is None


def test_when_the_contact_is_nearly_full_a_tip_is_refused_and_a_risk_message_goes() -> None:
    nearly_full = Pressure(contact=2, account_role=2)
    tip = budget_refusal(nearly_full, priority="low", role="admin", limits=LIMITS)
    assert tip is not None
    assert tip.startswith("budget: 2 messages already planned for the contact")
    assert "low priority may fill 1 of 3" in tip
    assert budget_refusal(nearly_full, priority="normal", role="admin", limits=LIMITS) is not None
    assert budget_refusal(nearly_full, priority="high", role="admin", limits=LIMITS) is None


def test_a_full_budget_refuses_high_but_not_critical() -> None:
    full = Pressure(contact=3, account_role=3)
    assert budget_refusal(full, priority="high", role="admin", limits=LIMITS) is not None
    assert budget_refusal(full, priority="critical", role="admin", limits=LIMITS) is None


def test_the_account_role_budget_applies_across_the_roles_holders() -> None:
    busy_role = Pressure(contact=0, account_role=4)
    refusal = budget_refusal(busy_role, priority="normal", role="admin", limits=LIMITS)
    assert refusal is not None
    assert "the account's admin contacts" in refusal
    assert budget_refusal(busy_role, priority="high", role="admin", limits=LIMITS) is None


def test_the_pressure_book_counts_the_window_per_contact_and_per_account_role() -> None:
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    book = PressureBook(
        [
            Planned("ws", "acme", "a1", "admin", t0 - timedelta(days=8)),  # out of the window
            Planned("ws", "acme", "a1", "admin", t0 - timedelta(days=1)),
            Planned("ws", "acme", "a2", "admin", t0 + timedelta(days=2)),  # deferred, counts
            Planned("ws", "acme", "b1", "decision_maker", t0),
            Planned("other", "acme", "a1", "admin", t0),  # another workspace
        ]
    )
    probe = Planned("ws", "acme", "a1", "admin", t0)
    assert book.pressure(probe, LIMITS.window) == Pressure(contact=1, account_role=2)
    book.add(probe)
    assert book.pressure(probe, LIMITS.window) == Pressure(contact=2, account_role=3)
