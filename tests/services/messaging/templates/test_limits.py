"""A render's budget: time from the clock it is given, output counted as it is written,
sizes measured without walking more than the limit."""

from __future__ import annotations

import pytest

from services.messaging.errors import TemplateLimitExceeded
from services.messaging.templates.limits import Budget, TemplateLimits, measure, replaced_size


def test_the_time_limit_is_checked_against_the_clock_given() -> None:
    now = [100.0]
    budget = Budget(TemplateLimits(time_seconds=1.0), monotonic=lambda: now[0])
    budget.tick()
    now[0] = 101.5
    with pytest.raises(TemplateLimitExceeded, match=r"time limit: rendering ran over 1\.0 s"):
        budget.tick()


def test_output_is_counted_across_writes() -> None:
    budget = Budget(TemplateLimits(output_chars=10))
    assert budget.write("12345") == "12345"
    budget.write("12345")
    with pytest.raises(TemplateLimitExceeded) as failed:
        budget.write("1")
    assert failed.value.limit == "output"


def test_a_shared_item_counts_each_time_and_counting_stops_past_the_cap() -> None:
    word = "x" * 10
    assert measure([word, word], 1000) == 1 + 2 + 20
    assert measure({"k": word}, 1000) == 1 + 2 + 1 + 10
    nested: list[object] = [word] * 10
    for _ in range(8):
        nested = [nested] * 10  # 10**9 characters as text, a few hundred objects
    assert 1000 < measure(nested, 1000) < 1100
    assert measure([[word]], 1000, indent=4) == 1 + (1 + 4) + (1 + 8) + 10


def test_a_replaced_size_is_known_before_replacing() -> None:
    assert replaced_size("abcabc", "b", "xyz") == len("abcabc".replace("b", "xyz"))
    assert replaced_size("abc", "", "--") == len("abc".replace("", "--"))
    assert replaced_size("aaaa", "a", "bb", 2) == len("aaaa".replace("a", "bb", 2))
