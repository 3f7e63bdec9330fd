"""A render's budget: CPU time from the clocks it is given, output counted as it is written,
sizes measured without walking more than the limit."""

from __future__ import annotations

import pytest

from services.messaging.errors import TemplateLimitExceeded
from services.messaging.templates.limits import Budget, TemplateLimits, measure, replaced_size


def test_the_time_limit_is_checked_against_the_clocks_given() -> None:
    wall, cpu = [100.0], [5.0]
    budget = Budget(
        TemplateLimits(time_seconds=1.0), monotonic=lambda: wall[0], cpu_clock=lambda: cpu[0]
    )
    budget.tick()
    wall[0], cpu[0] = 101.5, 6.5
    with pytest.raises(TemplateLimitExceeded, match=r"time limit: rendering ran over 1\.0 s"):
        budget.tick()


def test_time_spent_waiting_for_a_core_does_not_count() -> None:
    wall, cpu, cpu_reads = [100.0], [5.0], [0]

    def cpu_clock() -> float:
        cpu_reads[0] += 1
        return cpu[0]

    budget = Budget(
        TemplateLimits(time_seconds=1.0), monotonic=lambda: wall[0], cpu_clock=cpu_clock
    )
    wall[0], cpu[0] = 102.0, 5.4  # two seconds passed, the render ran for 0.4 of them
    budget.tick()
    budget.tick()
    assert cpu_reads[0] == 2  # the CPU clock read once at the start, once past the deadline
    wall[0], cpu[0] = 102.5, 5.9  # still under: its wall deadline moved to 102.6
    budget.tick()
    wall[0], cpu[0] = 102.7, 6.1
    with pytest.raises(TemplateLimitExceeded, match="time limit"):
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
