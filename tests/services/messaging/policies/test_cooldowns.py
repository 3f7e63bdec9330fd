"""Cooldowns per account and playbook step: one trigger's messages all go, another
trigger's within the cooldown are refused, other accounts and steps are not held back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.messaging.policies.cooldowns import CooldownBook, StepPlanned

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
WEEK = timedelta(days=7)


def planned(
    trigger: str, at: datetime, account: str = "acme", step: str = "p/check_in"
) -> StepPlanned:
    return StepPlanned("ws", account, step, trigger, at)


def test_another_trigger_within_the_cooldown_is_refused_with_the_reason() -> None:
    book = CooldownBook([planned("t1", T0)])
    refusal = book.refusal(planned("t2", T0 + timedelta(seconds=15)), WEEK)
    assert refusal == (
        "cooldown: p/check_in was planned for this account at 2026-03-02T09:00:00+00:00 "
        "(trigger t1); cooldown P7D"
    )
    assert book.refusal(planned("t1", T0 + timedelta(seconds=15)), WEEK) is None  # same trigger
    assert book.refusal(planned("t3", T0 + WEEK), WEEK) is None  # cooled down
    assert book.refusal(planned("t2", T0), None) is None  # a step without a cooldown
    assert book.refusal(planned("t2", T0, account="bolt"), WEEK) is None
    assert book.refusal(planned("t2", T0, step="p/visit"), WEEK) is None


def test_the_book_keeps_the_latest_plan_of_each_step() -> None:
    book = CooldownBook([planned("t2", T0 + timedelta(days=3)), planned("t1", T0)])
    assert book.refusal(planned("t3", T0 + timedelta(days=8)), WEEK) is not None
    book.add(planned("t4", T0 + timedelta(days=9)))
    assert book.latest[("ws", "acme", "p/check_in")].trigger_id == "t4"
