"""The metric-definitions format: each problem names the file, line and field."""

from __future__ import annotations

import pytest

from services.scoring.definitions import MetricsFile
from shared.definitions import DefinitionError, load_definition

NORTH_STAR = """\
metrics:
  - id: orders
    name: Orders
    kind: count
    event: Order Completed
    windows: [P7D, P28D]
    north_star: true
"""


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_definition("metrics.yaml", MetricsFile, text=text)
    assert all(p.file == "metrics.yaml" for p in caught.value.problems)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


def test_a_valid_file_loads() -> None:
    file = load_definition("metrics.yaml", MetricsFile, text=NORTH_STAR)
    assert [m.id for m in file.metrics] == ["orders"]
    assert file.metrics[0].north_star


def test_a_ratio_naming_an_unknown_metric() -> None:
    text = NORTH_STAR + (
        "  - id: share\n    name: Share\n    kind: ratio\n"
        "    numerator: orders\n    denominator: visits\n    windows: [P7D]\n"
    )
    assert problems(text) == [(12, "metrics[1].denominator", "metric 'visits' does not exist")]


def test_ratios_in_a_cycle() -> None:
    text = NORTH_STAR + (
        "  - id: a\n    name: A\n    kind: ratio\n"
        "    numerator: orders\n    denominator: b\n    windows: [P7D]\n"
        "  - id: b\n    name: B\n    kind: ratio\n"
        "    numerator: a\n    denominator: orders\n    windows: [P7D]\n"
    )
    assert problems(text) == [(17, "metrics[2].numerator", "ratios form a cycle: a -> b -> a")]


def test_a_ratio_of_itself() -> None:
    text = NORTH_STAR + (
        "  - id: a\n    name: A\n    kind: ratio\n"
        "    numerator: a\n    denominator: orders\n    windows: [P7D]\n"
    )
    assert problems(text) == [(11, "metrics[1].numerator", "ratios form a cycle: a -> a")]


def test_a_ratio_cannot_divide_a_last_seen_metric() -> None:
    text = NORTH_STAR + (
        "  - id: seen\n    name: Seen\n    kind: last_seen\n    event: Logged In\n"
        "  - id: a\n    name: A\n    kind: ratio\n"
        "    numerator: orders\n    denominator: seen\n    windows: [P7D]\n"
    )
    assert problems(text) == [
        (16, "metrics[2].denominator", "a ratio cannot divide a last_seen metric")
    ]


def test_an_unsupported_window() -> None:
    found = problems(NORTH_STAR.replace("[P7D, P28D]", "[P7D, P14D]"))
    assert [(line, field) for line, field, _ in found] == [(6, "metrics[0].windows[1]")]
    assert "'P1D', 'P7D', 'P28D' or 'P90D'" in found[0][2]


def test_a_window_listed_twice() -> None:
    found = problems(NORTH_STAR.replace("[P7D, P28D]", "[P7D, P7D]"))
    assert found == [(6, "metrics[0].windows", "a window is listed twice")]


def test_two_north_stars() -> None:
    text = NORTH_STAR + NORTH_STAR.removeprefix("metrics:\n").replace("orders", "more_orders")
    assert problems(text) == [
        (13, "metrics[1].north_star", "only one metric may be the North Star ('orders' is)")
    ]


def test_no_north_star() -> None:
    found = problems(NORTH_STAR.replace("    north_star: true\n", ""))
    assert found == [(2, "metrics", "one metric must be marked north_star: true")]


def test_the_north_star_has_a_window() -> None:
    text = "metrics:\n  - id: seen\n    name: Seen\n    kind: last_seen\n    event: X\n    north_star: true\n"
    assert problems(text) == [
        (6, "metrics[0].north_star", "the North Star is measured over a window; a last_seen is not")
    ]


def test_an_id_used_twice() -> None:
    text = NORTH_STAR + NORTH_STAR.removeprefix("metrics:\n").replace("    north_star: true\n", "")
    assert problems(text) == [(8, "metrics[1].id", "id 'orders' is already used")]


def test_each_kind_needs_its_fields() -> None:
    text = (
        NORTH_STAR
        + "  - id: gmv\n    name: GMV\n    kind: sum\n    event: Order Completed\n    windows: [P7D]\n"
    )
    assert problems(text) == [(8, "metrics[1].property", "a sum metric needs 'property'")]


def test_a_kind_refuses_fields_it_does_not_use() -> None:
    text = (
        NORTH_STAR
        + "  - id: seats\n    name: Seats\n    kind: fact\n    fact: crm.seats\n    windows: [P7D]\n"
    )
    assert problems(text) == [(12, "metrics[1].windows", "a fact metric takes no 'windows'")]


def test_an_unknown_field_is_named_on_its_key() -> None:
    found = problems(NORTH_STAR + "    colour: red\n")
    assert found == [(8, "metrics[0].colour", "Extra inputs are not permitted")]


def test_an_unknown_role() -> None:
    text = NORTH_STAR.replace("    windows:", "    role: ceo\n    windows:")
    [(line, field, message)] = problems(text)
    assert (line, field) == (6, "metrics[0].role")
    assert "'decision_maker', 'admin', 'end_user', 'influencer' or 'gatekeeper'" in message


def test_a_where_filter_takes_values_or_lists_of_values() -> None:
    text = NORTH_STAR.replace("    windows:", "    where: {plan: {pro: 1}}\n    windows:")
    assert problems(text) == [
        (
            6,
            "metrics[0].where.plan",
            "expected a value or a list of values (text, number, true or false)",
        )
    ]
    empty = NORTH_STAR.replace("    windows:", "    where:\n      plan: []\n    windows:")
    assert [(line, field) for line, field, _ in problems(empty)] == [(7, "metrics[0].where.plan")]


def test_only_a_windowed_count_sum_or_distinct_users_metric_is_a_feature() -> None:
    text = NORTH_STAR + (
        "  - id: seen\n    name: Seen\n    kind: last_seen\n    event: Logged In\n"
        "    feature: true\n"
    )
    assert problems(text) == [
        (12, "metrics[1].feature", "a feature is counted over a window; a last_seen is not")
    ]


def test_only_a_last_seen_metric_is_a_contact() -> None:
    assert problems(NORTH_STAR + "    contact: true\n") == [
        (8, "metrics[0].contact", "a contact is a last_seen metric; a count is not")
    ]


def test_health_weights_name_known_components_and_segments() -> None:
    text = NORTH_STAR + (
        "health:\n"
        "  weights: {login_trend: 2, relationship: 1}\n"
        "  segments:\n"
        "    - {business_type: platform, tier: L3, weights: {billing_state: 1}}\n"
        "    - {tier: L3, weights: {usage_dept: 1}}\n"
    )
    ((line, field, message),) = problems(text)
    assert (line, field) == (12, "health.segments[1].weights.usage_dept")
    assert message.startswith("Input should be 'usage_depth'")


def test_a_health_segment_names_whom_it_weighs_and_is_listed_once() -> None:
    nobody = NORTH_STAR + "health:\n  segments:\n    - {weights: {login_trend: 1}}\n"
    assert problems(nobody) == [
        (10, "health.segments[0]", "a segment names a business_type, a tier or both")
    ]
    twice = NORTH_STAR + (
        "health:\n  segments:\n"
        "    - {tier: L1, weights: {login_trend: 1}}\n"
        "    - {tier: L1, weights: {login_trend: 2}}\n"
    )
    assert problems(twice) == [(11, "health.segments[1]", "this segment is listed twice")]
    zero = NORTH_STAR + "health:\n  weights: {login_trend: 0}\n"
    assert problems(zero) == [(9, "health.weights", "at least one weight must be above 0")]


def test_signal_tuning_names_a_known_signal_and_keeps_clear_on_the_healthy_side() -> None:
    unknown = NORTH_STAR + "signals:\n  logins_dropping: {raise_at: 0.4}\n"
    ((line, field, message),) = problems(unknown)
    assert (line, field) == (9, "signals.logins_dropping")
    assert message.startswith("Input should be 'logins_falling'")
    wrong_side = NORTH_STAR + "signals:\n  silence: {raise_at: 20}\n"
    assert problems(wrong_side) == [
        (9, "signals.silence", "clear_at (30) must be below raise_at (20) for silence")
    ]
    below = NORTH_STAR + "signals:\n  logins_falling: {clear_at: 0.4}\n"
    assert problems(below) == [
        (
            9,
            "signals.logins_falling",
            "clear_at (0.4) must be above raise_at (0.5) for logins_falling",
        )
    ]
