"""Retry decisions: full jitter under each bound, Retry-After honoured, dead letters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.messaging.channels.base import SendResult
from services.messaging.deliveries.dispatcher import full_jitter
from services.messaging.deliveries.retries import decide
from tests.services.messaging.deliveries.support import SCHEDULE, T0

BUSY = SendResult.retryable("HTTP 503")


@pytest.mark.parametrize(("attempt", "bound"), [(1, 10.0), (2, 40.0), (3, 160.0)])
def test_retry_n_waits_up_to_the_nth_bound(attempt: int, bound: float) -> None:
    drawn: list[float] = []

    def draw(upper: float) -> float:
        drawn.append(upper)
        return upper / 2

    decision = decide(BUSY, attempt=attempt, schedule=SCHEDULE, now=T0, draw=draw)

    assert drawn == [bound]
    assert decision.status == "retrying"
    assert decision.due_at == T0 + timedelta(seconds=bound / 2)
    assert not decision.dead_letter


def test_after_the_last_retry_the_delivery_fails_and_is_dead_lettered() -> None:
    decision = decide(BUSY, attempt=len(SCHEDULE) + 1, schedule=SCHEDULE, now=T0, draw=full_jitter)
    assert (decision.status, decision.due_at, decision.dead_letter) == ("failed", None, True)


def test_a_permanent_failure_is_not_retried() -> None:
    bounce = SendResult.permanent("550 no such user")
    decision = decide(bounce, attempt=1, schedule=SCHEDULE, now=T0, draw=full_jitter)
    assert (decision.status, decision.dead_letter) == ("failed", True)


def test_the_wait_is_never_shorter_than_the_providers_retry_after() -> None:
    limited = SendResult.retryable("HTTP 429", retry_after_seconds=90.0)
    decision = decide(limited, attempt=1, schedule=SCHEDULE, now=T0, draw=lambda b: b)
    assert decision.due_at == T0 + timedelta(seconds=90)


def test_full_jitter_stays_between_zero_and_the_bound() -> None:
    draws = [full_jitter(10.0) for _ in range(500)]
    assert all(0.0 <= d <= 10.0 for d in draws)
    assert min(draws) < 2.5
    assert max(draws) > 7.5


def test_a_sent_delivery_is_done() -> None:
    decision = decide(
        SendResult.sent("p-1"), attempt=1, schedule=SCHEDULE, now=T0, draw=full_jitter
    )
    assert (decision.status, decision.due_at, decision.dead_letter) == ("sent", None, False)
