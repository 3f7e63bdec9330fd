"""Peer updates when an account's values or tier change, and the core problem named from its
percentiles among its tier peers by the metrics file's rules."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.scoring.definitions import load_metrics
from services.scoring.definitions.compiled import (
    DiagnosticRule,
    PathDiagnostics,
    PercentileBound,
)
from services.scoring.diagnostics import (
    PeerDistribution,
    PeerGroup,
    PeerStanding,
    PeerUpdate,
    diagnose,
    peer_updates,
)
from shared.contracts.scores import ScoreKind

L2 = PeerGroup("platform-merchant", "L2")
L3 = PeerGroup("platform-merchant", "L3")
REFERENCE = load_metrics(Path("services/scoring/reference/metrics.yaml"))
MERCHANT = REFERENCE.diagnostics_for("platform-merchant")
NAMES = {metric.id: metric.name for metric in REFERENCE.metrics}


# -- peer updates --------------------------------------------------------------------------


def test_a_standing_keeps_only_known_finite_figures_in_order() -> None:
    standing = PeerStanding.of(
        L2,
        {"b_28d": 2, "a_28d": 1.5, "c_28d": None, "d_28d": float("nan")},
        ["d_28d", "c_28d", "b_28d", "a_28d"],
    )
    assert standing.values == (("a_28d", 1.5), ("b_28d", 2.0))
    assert PeerStanding.from_json(standing.to_json()) == standing


def test_first_evaluation_adds_and_leaving_removes() -> None:
    standing = PeerStanding(L2, (("gmv_28d", 12000.0), ("orders_28d", 40.0)))
    assert peer_updates(None, standing) == (
        PeerUpdate(L2, "gmv_28d", None, 12000.0),
        PeerUpdate(L2, "orders_28d", None, 40.0),
    )
    assert peer_updates(standing, None) == (
        PeerUpdate(L2, "gmv_28d", 12000.0, None),
        PeerUpdate(L2, "orders_28d", 40.0, None),
    )
    assert peer_updates(standing, standing) == ()


def test_a_changed_value_moves_and_a_new_tier_moves_every_figure() -> None:
    old = PeerStanding(L2, (("gmv_28d", 12000.0), ("orders_28d", 40.0)))
    changed = PeerStanding(L2, (("gmv_28d", 13000.0), ("orders_28d", 40.0)))
    assert peer_updates(old, changed) == (PeerUpdate(L2, "gmv_28d", 12000.0, 13000.0),)
    swapped = PeerStanding(L2, (("aov_28d", 80.0), ("orders_28d", 40.0)))
    assert peer_updates(old, swapped) == (
        PeerUpdate(L2, "aov_28d", None, 80.0),
        PeerUpdate(L2, "gmv_28d", 12000.0, None),
    )
    promoted = PeerStanding(L3, (("gmv_28d", 52000.0),))
    assert peer_updates(old, promoted) == (
        PeerUpdate(L2, "gmv_28d", 12000.0, None),
        PeerUpdate(L2, "orders_28d", 40.0, None),
        PeerUpdate(L3, "gmv_28d", None, 52000.0),
    )
    placed = PeerStanding(PeerGroup("platform-merchant", None), (("gmv_28d", 5.0),))
    assert [u.group.tier for u in peer_updates(placed, old)] == [None, "L2", "L2"]


def test_replaying_every_accounts_updates_gives_the_distributions_of_their_latest_values() -> None:
    rng = random.Random(3)
    figures = ("gmv_28d", "orders_28d")
    kept: dict[str, PeerStanding] = {}
    distributions: dict[tuple[PeerGroup, str], PeerDistribution] = {}
    for _ in range(2000):
        account = f"a{rng.randrange(60)}"
        tier = rng.choice(["L1", "L2", "L3"])
        values = {f: rng.choice([None, rng.uniform(0, 1e5)]) for f in figures}
        new = PeerStanding.of(PeerGroup("p", tier), values, figures)
        for update in peer_updates(kept.get(account), new):
            update.apply(
                distributions.setdefault((update.group, update.figure), PeerDistribution())
            )
        kept[account] = new
    rebuilt: dict[tuple[PeerGroup, str], PeerDistribution] = {}
    for standing in kept.values():
        for figure, value in standing.values:
            rebuilt.setdefault((standing.group, figure), PeerDistribution()).add(value)
    assert {k: v for k, v in distributions.items() if v.count} == rebuilt


# -- diagnose ------------------------------------------------------------------------------


def peers_of(values: dict[str, list[float]]) -> dict[str, PeerDistribution]:
    distributions = {}
    for figure, figures in values.items():
        distribution = PeerDistribution()
        for value in figures:
            distribution.add(value)
        distributions[figure] = distribution
    return distributions


# 40 L2 merchants: listings 1..40, orders per listing 0.1..4.0, orders 1..40 * 10.
PEERS = peers_of(
    {
        "listings_published_28d": [float(i) for i in range(1, 41)],
        "orders_per_listing_28d": [i / 10 for i in range(1, 41)],
        "orders_28d": [i * 10.0 for i in range(1, 41)],
        "average_order_value_28d": [float(i * 5) for i in range(1, 41)],
        "logins_28d": [float(i) for i in range(1, 41)],
    }
)


def test_the_reference_rules_name_a_merchant_whose_listings_do_not_convert() -> None:
    assert MERCHANT is not None
    values = {"listings_published_28d": 30.0, "orders_per_listing_28d": 0.3, "logins_28d": 2.0}
    diagnosis = diagnose(MERCHANT, L2, values, PEERS, NAMES)
    assert diagnosis is not None
    assert (diagnosis.rule, diagnosis.playbook) == (
        "listings_do_not_convert",
        "merchant-listing-conversion",
    )
    assert diagnosis.sentence == (
        "Listings are published but few of them sell: by listings published (28 days) the "
        "account is in the top half of L2 (75th percentile), but by orders per listing "
        "published (28 days) it is in the bottom 20% of L2 (6th percentile)."
    )
    # 30 shares its 4%-wide bin with 31: 29 below, the two counted half (true: 73.75).
    assert [(f.figure, f.value, f.percentile, f.peers) for f in diagnosis.findings] == [
        ("listings_published_28d", 30.0, 75.0, 40),
        ("orders_per_listing_28d", 0.3, 6.2, 40),
    ]
    assert diagnosis.key == "platform-merchant/L2/listings_do_not_convert"


def test_rules_are_tried_in_order_and_the_first_that_holds_wins() -> None:
    assert MERCHANT is not None
    # Converts well, small baskets, few logins: small_baskets comes before seller_absent.
    values = {
        "listings_published_28d": 30.0,
        "orders_per_listing_28d": 3.5,
        "orders_28d": 300.0,
        "average_order_value_28d": 10.0,
        "logins_28d": 1.0,
    }
    diagnosis = diagnose(MERCHANT, L2, values, PEERS, NAMES)
    assert diagnosis is not None
    assert diagnosis.rule == "small_baskets"
    assert "by orders completed (28 days) the account is in the top half of L2" in (
        diagnosis.sentence
    )
    del values["orders_28d"]  # unknown figure: that rule cannot hold
    later = diagnose(MERCHANT, L2, values, PEERS, NAMES)
    assert later is not None
    assert later.rule == "seller_absent"


def test_a_rule_limited_to_tiers_is_skipped_elsewhere() -> None:
    assert MERCHANT is not None
    values = {"listings_published_28d": 2.0, "logins_28d": 39.0}
    in_l2 = diagnose(MERCHANT, L2, values, PEERS, NAMES)
    assert in_l2 is not None
    assert in_l2.rule == "thin_catalogue"
    assert diagnose(MERCHANT, PeerGroup("platform-merchant", "L4"), values, PEERS, NAMES) is None


def test_no_diagnosis_with_too_few_peers_or_none_holding() -> None:
    assert MERCHANT is not None
    few = peers_of({"logins_28d": [float(i) for i in range(1, 20)]})  # min_peers is 20
    assert diagnose(MERCHANT, L2, {"logins_28d": 1.0}, few, NAMES) is None
    healthy = {
        "listings_published_28d": 30.0,
        "orders_per_listing_28d": 3.0,
        "orders_28d": 300.0,
        "average_order_value_28d": 150.0,
        "logins_28d": 30.0,
    }
    assert diagnose(MERCHANT, L2, healthy, PEERS, NAMES) is None


def test_bounds_read_as_words_and_the_same_side_joins_with_and() -> None:
    rules = PathDiagnostics(
        "saas-account",
        2,
        (
            DiagnosticRule(
                "middling",
                "Usage is average but contact is rare",
                frozenset(),
                (
                    PercentileBound("logins", None, 25, 75),
                    PercentileBound("tickets", None, None, 50),
                    PercentileBound("requests", None, None, 30),
                ),
                "saas-check-in",
            ),
        ),
    )
    peers = peers_of(
        {name: [float(i) for i in range(1, 11)] for name in ("logins", "tickets", "requests")}
    )
    group = PeerGroup("saas-account", None)
    diagnosis = diagnose(rules, group, {"logins": 5.0, "tickets": 1.0, "requests": 2.0}, peers)
    assert diagnosis is not None
    assert diagnosis.sentence == (
        "Usage is average but contact is rare: by logins the account is in between the 25th "
        "and 75th percentile of the saas-account accounts (45th percentile), but by tickets it "
        "is in the bottom half of the saas-account accounts (5th percentile), and by requests "
        "it is in the bottom 30% of the saas-account accounts (15th percentile)."
    )
    assert diagnosis.key == "saas-account/-/middling"


def test_the_same_input_gives_the_same_diagnosis_and_event() -> None:
    assert MERCHANT is not None
    values = {"listings_published_28d": 30.0, "orders_per_listing_28d": 0.3}
    at = datetime(2026, 11, 22, tzinfo=UTC)
    first, second = (diagnose(MERCHANT, L2, values, PEERS, NAMES) for _ in range(2))
    assert first == second
    assert first is not None
    envelope = first.envelope(
        score_event_id="w/a/diag/1", workspace_id="w", account_id="a", occurred_at=at
    )
    assert envelope.kind is ScoreKind.DIAGNOSIS
    assert envelope.tier == "L2"
    assert envelope.explanation["playbook"] == "merchant-listing-conversion"
    assert envelope.explanation["findings"][1]["percentile"] == 6.2
    assert envelope.explanation["sentence"] == first.sentence


@pytest.mark.parametrize("path", ["platform-merchant", "saas-account"])
def test_both_reference_paths_have_rules_over_defined_figures(path: str) -> None:
    rules = REFERENCE.diagnostics_for(path)
    assert rules is not None
    assert rules.rules
    assert all(rule.playbook for rule in rules.rules)
    assert set(rules.figures) <= {
        f"{m.id}_{w.value}d" for m in REFERENCE.metrics for w in m.windows
    } | {m.id for m in REFERENCE.metrics if not m.windows}
