from collections.abc import Mapping

import pytest

from services.scoring.health import snapshot as s
from services.scoring.health.components import Component
from services.scoring.health.score import (
    Band,
    HealthConfig,
    HealthScore,
    meaningful_change,
    score_health,
)
from services.scoring.health.snapshot import AccountSnapshot

CONFIG = HealthConfig()

FULL = {
    s.ACTIONS_PER_ACTIVE_USER_7D: 20.0,
    s.FEATURES_USED_28D: 8.0,
    s.ACTIVE_SEATS_28D: 8.0,
    s.PAID_SEATS: 10.0,
    s.LOGINS_7D: 40.0,
    s.LOGINS_28D_WEEKLY_AVG: 40.0,
    s.OPEN_TICKETS: 0.0,
}
ROLES = {s.DECISION_MAKER: 3.0, s.ADMIN: 1.0}


def snap(metrics: Mapping[str, float | None], **facts: object) -> AccountSnapshot:
    return AccountSnapshot(
        metrics=metrics,
        facts={s.INVOICE_STATUS: "paid", **facts},
        last_seen_days=ROLES,
        now=1_700_000_000,
    )


def score(snapshot: AccountSnapshot, config: HealthConfig = CONFIG) -> HealthScore:
    result = score_health(snapshot, config)
    assert result is not None
    return result


def test_everything_at_full_marks_is_100_and_healthy() -> None:
    result = score(snap(FULL))
    assert result.score == 100.0
    assert result.band is Band.HEALTHY
    assert result.missing == ()
    assert sum(c.weight for c in result.components) == pytest.approx(1.0)


def test_contribution_is_value_times_weight() -> None:
    result = score(snap({**FULL, s.LOGINS_7D: 30.0}))  # login trend 0.5, weight 20%
    trend = next(c for c in result.components if c.component is Component.LOGIN_TREND)
    assert (trend.value, trend.weight) == (0.5, 0.2)
    assert trend.contribution == pytest.approx(10.0)
    assert result.score == 90.0


def test_missing_component_is_left_out_and_weights_renormalised() -> None:
    metrics = {k: v for k, v in FULL.items() if k != s.OPEN_TICKETS}
    metrics[s.ACTIONS_PER_ACTIVE_USER_7D] = 0.0  # depth 0, weight 20 of the 90 left
    result = score(snap(metrics))
    assert result.missing == (Component.SUPPORT_LOAD,)
    depth = result.components[0]
    assert depth.weight == pytest.approx(20 / 90)
    assert result.score == pytest.approx(100 * 70 / 90, abs=0.05)
    assert result.explanation()[-1] == (
        "Left out for lack of data: support load; "
        "the other weights were scaled up to add up to 100%."
    )


def test_explanation_words() -> None:
    metrics = {
        s.LOGINS_7D: 12.0,
        s.LOGINS_28D_WEEKLY_AVG: 30.0,
        s.OPEN_TICKETS: 1.0,
    }
    result = score(snap(metrics, **{s.INVOICE_STATUS: "overdue"}))
    assert result.explanation() == (
        "Health 41.8 of 100 (watch) from 4 of 7 components.",
        "Login trend: 0.00 (12 logins in 7 days against a weekly average of 30), "
        "weight 36%, contributes 0.0 points.",
        "Support load: 0.80 (1 open ticket), weight 18%, contributes 14.5 points.",
        "Billing state: 0.00 (invoice overdue), weight 18%, contributes 0.0 points.",
        "Relationship: 1.00 (decision maker last active 3 days ago, admin last active 1 "
        "day ago), weight 27%, contributes 27.3 points.",
        "Left out for lack of data: usage depth, usage breadth, seat activation; "
        "the other weights were scaled up to add up to 100%.",
    )
    explanation = result.as_explanation()
    assert explanation["band"] == "watch"
    assert explanation["missing"] == ["usage_depth", "usage_breadth", "seat_activation"]
    assert explanation["components"]["support_load"]["contribution"] == 14.55


def test_no_data_no_score() -> None:
    assert score_health(AccountSnapshot(), CONFIG) is None


def test_segment_weights_by_business_type_and_tier() -> None:
    only_logins = {Component.LOGIN_TREND: 1.0}
    only_billing = {Component.BILLING_STATE: 1.0}
    config = HealthConfig(
        segment_weights={("platform", "L2"): only_logins, ("platform", None): only_billing}
    )
    metrics = {**FULL, s.LOGINS_7D: 30.0}
    l2 = score(snap(metrics, **{s.BUSINESS_TYPE: "platform", s.TIER: "L2"}), config)
    l1 = score(snap(metrics, **{s.BUSINESS_TYPE: "platform", s.TIER: "L1"}), config)
    saas = score(snap(metrics, **{s.BUSINESS_TYPE: "saas", s.TIER: "L2"}), config)
    assert (l2.score, l1.score, saas.score) == (50.0, 100.0, 90.0)
    assert [c.component for c in l2.components] == [Component.LOGIN_TREND]
    assert l2.missing == ()


@pytest.mark.parametrize(
    ("value", "band"),
    [(70.0, Band.HEALTHY), (69.9, Band.WATCH), (40.0, Band.WATCH), (39.9, Band.AT_RISK)],
)
def test_bands(value: float, band: Band) -> None:
    assert CONFIG.band(value) is band


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValueError, match="weights"):
        HealthConfig(default_weights={Component.LOGIN_TREND: 0})
    with pytest.raises(ValueError, match="bands"):
        HealthConfig(healthy_from=30, watch_from=40)


def at(value: float) -> HealthScore:
    return HealthScore(value, CONFIG.band(value), (), ())


@pytest.mark.parametrize(
    ("before", "after", "due"),
    [
        (None, 80.0, True),
        (80.0, 84.9, False),
        (80.0, 85.0, True),
        (80.0, 75.0, True),
        (71.0, 69.0, True),  # band change, 2 points
        (69.0, 71.0, True),
        (60.0, 56.0, False),
    ],
)
def test_meaningful_change(before: float | None, after: float, due: bool) -> None:
    previous = at(before) if before is not None else None
    assert meaningful_change(previous, at(after), CONFIG) is due
