"""Facts fold per account within a bound: at most MAX_FACTS, each at most MAX_FACT_BYTES,
MAX_FACTS_BYTES in all."""

from __future__ import annotations

from services.node_engine.core.facts import (
    MAX_FACT_BYTES,
    MAX_FACTS,
    MAX_FACTS_BYTES,
    fact_size,
    fold_facts,
    scored_facts,
)


def test_a_later_value_replaces_the_earlier_one_and_the_rest_stay() -> None:
    known = {"account.size": 800, "crm.deal_stage": "new"}
    assert fold_facts(known, {"crm.deal_stage": "won"}) == {
        "account.size": 800,
        "crm.deal_stage": "won",
    }
    assert known == {"account.size": 800, "crm.deal_stage": "new"}  # not changed


def test_no_more_than_max_facts_are_kept_and_the_first_stay() -> None:
    many = {f"account.k{i}": i for i in range(MAX_FACTS + 10)}
    facts = fold_facts({}, many)
    assert len(facts) == MAX_FACTS
    assert "account.k0" in facts
    assert f"account.k{MAX_FACTS}" not in facts
    # a kept fact still changes when full
    assert fold_facts(facts, {"account.k0": -1})["account.k0"] == -1


def test_a_value_too_large_is_not_kept_and_removes_a_stale_one() -> None:
    huge = "x" * MAX_FACT_BYTES
    assert fact_size("account.note", huge) > MAX_FACT_BYTES
    assert fold_facts({}, {"account.note": huge}) == {}
    assert fold_facts({"account.note": "short"}, {"account.note": huge}) == {}
    assert fold_facts({}, {"account.odd": object()}) == {}


def test_the_bytes_in_all_are_bounded() -> None:
    value = "y" * 900
    facts = fold_facts({}, {f"account.f{i}": value for i in range(40)})
    assert sum(fact_size(k, v) for k, v in facts.items()) <= MAX_FACTS_BYTES
    assert len(facts) == MAX_FACTS_BYTES // fact_size("account.f10", value)


def test_scores_become_score_facts() -> None:
    assert scored_facts({"risk_level": "high", "health": 40}) == {
        "score.risk_level": "high",
        "score.health": 40,
    }


def test_near_the_bound_the_known_facts_are_sized_one_by_one() -> None:
    known = {f"account.f{i:02}": "y" * 900 for i in range(17)}
    room = MAX_FACTS_BYTES - sum(fact_size(k, v) for k, v in known.items())
    value = "z" * (room - len("account.new") - 2)  # fills the bound exactly
    assert fact_size("account.new", value) == room
    assert fold_facts(known, {"account.new": value})["account.new"] == value
    assert "account.new" not in fold_facts(known, {"account.new": value + "z"})
