"""Contact-pressure budgets: per contact and per account role, with each priority filling
only its share, so a renewal-risk message beats a tip."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.messaging.playbooks.files import Priority
from services.messaging.policies.budgets import (
    BudgetLimits,
    Load,
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


def load(total: int, competing: int | None = None) -> Load:
    return Load(total, total if competing is None else competing)


def test_when_the_contact_is_nearly_full_a_tip_is_refused_and_a_risk_message_goes() -> None:
    nearly_full = Pressure(contact=load(2), account_role=load(2))
    tip = budget_refusal(nearly_full, priority="low", role="admin", limits=LIMITS)
    assert tip is not None
    assert tip.startswith("budget: 2 messages of low priority or lower already planned for the")
    assert "low priority may fill 1 of 3" in tip
    assert budget_refusal(nearly_full, priority="normal", role="admin", limits=LIMITS) is not None
    assert budget_refusal(nearly_full, priority="high", role="admin", limits=LIMITS) is None


def test_a_full_budget_refuses_high_but_not_critical() -> None:
    full = Pressure(contact=load(3), account_role=load(3))
    refusal = budget_refusal(full, priority="high", role="admin", limits=LIMITS)
    assert refusal == "budget: 3 messages already planned for the contact in 7 days, the cap"
    assert budget_refusal(full, priority="critical", role="admin", limits=LIMITS) is None


def test_the_account_role_budget_applies_across_the_roles_holders() -> None:
    busy_role = Pressure(contact=load(0), account_role=load(4))
    refusal = budget_refusal(busy_role, priority="normal", role="admin", limits=LIMITS)
    assert refusal is not None
    assert "the account's admin contacts" in refusal
    assert budget_refusal(busy_role, priority="high", role="admin", limits=LIMITS) is None


T0 = datetime(2026, 3, 2, tzinfo=UTC)


def test_a_higher_priority_send_does_not_use_up_a_lower_prioritys_share() -> None:
    """A welcome (normal) and a high-priority nudge leave the contact room for one more
    normal message (its share is 2 of 3); the cap then stops a fourth of any priority but
    critical."""
    book = PressureBook(
        [
            Planned("ws", "acme", "a1", "admin", T0, "normal"),  # the welcome
            Planned("ws", "acme", "a1", "admin", T0 + timedelta(hours=1), "high"),  # a nudge
        ]
    )
    guide = Planned("ws", "acme", "a1", "admin", T0 + timedelta(days=1), "normal")
    pressure = book.pressure(guide, LIMITS.window)
    assert pressure.contact == Load(total=2, competing=1)
    assert budget_refusal(pressure, priority="normal", role="admin", limits=LIMITS) is None
    book.add(guide)
    fourth = Planned("ws", "acme", "a1", "admin", T0 + timedelta(days=2), "normal")
    for priority in ("low", "normal", "high"):
        refusal = budget_refusal(
            book.pressure(replace(fourth, priority=priority), LIMITS.window),
            priority=priority,
            role="admin",
            limits=LIMITS,
        )
        assert refusal is not None
        assert refusal.endswith("the cap")
    critical = book.pressure(replace(fourth, priority="critical"), LIMITS.window)
    assert budget_refusal(critical, priority="critical", role="admin", limits=LIMITS) is None


def test_lower_priorities_still_leave_headroom_for_higher_ones() -> None:
    """Two normal messages fill normal's share; the last slot stays for a high one."""
    book = PressureBook(
        [Planned("ws", "acme", "a1", "admin", T0 + timedelta(hours=h), "normal") for h in (0, 1)]
    )
    probe = Planned("ws", "acme", "a1", "admin", T0 + timedelta(hours=2), "normal")
    normal = budget_refusal(
        book.pressure(probe, LIMITS.window), priority="normal", role="admin", limits=LIMITS
    )
    assert normal is not None
    assert "normal priority may fill 2 of 3" in normal
    high = book.pressure(replace(probe, priority="high"), LIMITS.window)
    assert budget_refusal(high, priority="high", role="admin", limits=LIMITS) is None


def test_the_pressure_book_counts_the_window_per_contact_and_per_account_role() -> None:
    t0 = T0
    book = PressureBook(
        [
            Planned("ws", "acme", "a1", "admin", t0 - timedelta(days=8), "normal"),  # too old
            Planned("ws", "acme", "a1", "admin", t0 - timedelta(days=1), "high"),
            Planned("ws", "acme", "a2", "admin", t0 + timedelta(days=2), "low"),  # deferred
            Planned("ws", "acme", "b1", "decision_maker", t0, "normal"),
            Planned("other", "acme", "a1", "admin", t0, "normal"),  # another workspace
        ]
    )
    probe = Planned("ws", "acme", "a1", "admin", t0, "normal")
    assert book.pressure(probe, LIMITS.window) == Pressure(
        contact=Load(1, 0), account_role=Load(2, 1)
    )
    book.add(probe)
    assert book.pressure(probe, LIMITS.window) == Pressure(
        contact=Load(2, 1), account_role=Load(3, 2)
    )
