import math
from collections.abc import Mapping

import pytest

from services.scoring.health import snapshot as s
from services.scoring.health.score import HealthConfig, HealthScore
from services.scoring.health.snapshot import DAY, AccountSnapshot
from services.scoring.signals.assess import assess
from services.scoring.signals.rules import (
    DEFAULT_THRESHOLDS,
    Severity,
    SignalConfig,
    SignalKind,
    Threshold,
)

NOW = 1_700_000_000
K = SignalKind


def raised(
    metrics: Mapping[str, float | None] | None = None,
    facts: Mapping[str, object] | None = None,
    roles: Mapping[str, float | None] | None = None,
    health: HealthScore | None = None,
) -> frozenset[SignalKind]:
    snapshot = AccountSnapshot(metrics or {}, facts or {}, roles or {}, NOW)
    return assess(None, snapshot, health, now=NOW).state.kinds


@pytest.mark.parametrize(("recent", "up"), [(10, True), (20, True), (21, False), (40, False)])
def test_logins_falling_against_own_baseline(recent: float, up: bool) -> None:
    got = raised({s.LOGINS_7D: recent, s.LOGINS_28D_WEEKLY_AVG: 40})
    assert (K.LOGINS_FALLING in got) is up


def test_logins_falling_needs_a_baseline() -> None:
    assert raised({s.LOGINS_7D: 0, s.LOGINS_28D_WEEKLY_AVG: 2.9}) == frozenset()
    assert raised({s.LOGINS_7D: 0, s.LOGINS_28D_WEEKLY_AVG: 3}) == {K.LOGINS_FALLING}


@pytest.mark.parametrize(
    ("recent", "baseline", "up"),
    [
        (9_999, 2_000, False),
        (10_000, 2_000, True),
        (40_000, 2_000, True),
        (4_999, 10, False),  # baseline floored at 1000 rows
        (5_000, 10, True),
    ],
)
def test_data_export(recent: float, baseline: float, up: bool) -> None:
    got = raised({s.EXPORT_ROWS_7D: recent, s.EXPORT_ROWS_28D_WEEKLY_AVG: baseline})
    assert (K.DATA_EXPORT in got) is up


@pytest.mark.parametrize(
    ("recent", "baseline", "up"),
    [(4_999, 1_000, False), (5_000, 1_000, True), (9_000, 1_000, True), (2_499, 0, False)],
)
def test_api_burst(recent: float, baseline: float, up: bool) -> None:
    got = raised({s.API_CALLS_1D: recent, s.API_CALLS_28D_DAILY_AVG: baseline})
    assert (K.API_BURST in got) is up


@pytest.mark.parametrize(("days", "up"), [(59, False), (60, True), (120, True)])
def test_silence(days: float, up: bool) -> None:
    assert (K.SILENCE in raised({s.DAYS_SINCE_LAST_CONTACT: days})) is up


@pytest.mark.parametrize(("days", "up"), [(29, False), (30, True), (45, True), (None, True)])
def test_decision_maker_and_admin_inactive(days: float | None, up: bool) -> None:
    assert (K.DECISION_MAKER_INACTIVE in raised(roles={s.DECISION_MAKER: days})) is up
    assert (K.ADMIN_INACTIVE in raised(roles={s.ADMIN: days})) is up


def test_a_role_the_account_lacks_raises_nothing() -> None:
    assert raised(roles={"end_user": None}) == frozenset()


@pytest.mark.parametrize(("status", "up"), [("overdue", True), ("paid", False), ("open", False)])
def test_invoice_overdue(status: str, up: bool) -> None:
    assert (K.INVOICE_OVERDUE in raised(facts={s.INVOICE_STATUS: status})) is up


@pytest.mark.parametrize(("now", "up"), [(0.61, False), (0.6, True), (0.3, True), (0.9, False)])
def test_seat_utilisation_falling_by_twenty_points(now: float, up: bool) -> None:
    got = raised({s.SEAT_UTILISATION: now, s.SEAT_UTILISATION_28D_AGO: 0.8})
    assert (K.SEAT_UTILISATION_FALLING in got) is up


def health(score: float) -> HealthScore:
    return HealthScore(score, HealthConfig().band(score), (), ())


@pytest.mark.parametrize(
    ("days", "score", "up"),
    [
        (30, 40.0, True),
        (30, 40.1, False),
        (30, 10.0, True),
        (90, 20.0, True),
        (91, 20.0, False),
        (-1, 20.0, False),
    ],
)
def test_renewal_within_90_days_while_health_is_low(days: int, score: float, up: bool) -> None:
    facts = {s.RENEWAL_AT: NOW + days * DAY}
    assert (K.RENEWAL_AT_RISK in raised(facts=facts, health=health(score))) is up


def test_renewal_without_health_or_date_raises_nothing() -> None:
    assert raised(facts={s.RENEWAL_AT: NOW + DAY}) == frozenset()
    assert raised(health=health(5.0)) == frozenset()


def test_sentences() -> None:
    snapshot = AccountSnapshot(
        {
            s.API_CALLS_1D: 12_000,
            s.API_CALLS_28D_DAILY_AVG: 1_500,
            s.DAYS_SINCE_LAST_CONTACT: 75,
            s.SEAT_UTILISATION: 0.5,
            s.SEAT_UTILISATION_28D_AGO: 0.8,
        },
        {s.RENEWAL_AT: NOW + 30 * DAY, s.INVOICE_STATUS: "overdue"},
        {s.DECISION_MAKER: None, s.ADMIN: 45},
        NOW,
    )
    result = assess(None, snapshot, health(35.0), now=NOW)
    assert {signal.kind: signal.sentence for signal in result.signals} == {
        K.API_BURST: "An API-call burst: 12,000 calls in the last day, 8.0x the usual "
        "(daily average 1,500). Data may be being pulled out.",
        K.SILENCE: "Silence: no feature request, ticket or contact with the team for 75 days.",
        K.DECISION_MAKER_INACTIVE: "The decision maker has never been active.",
        K.ADMIN_INACTIVE: "The admin has not been active for 45 days.",
        K.INVOICE_OVERDUE: "An invoice is overdue.",
        K.SEAT_UTILISATION_FALLING: "Seat utilisation is falling: 80% of paid seats were "
        "active 28 days ago, 50% now.",
        K.RENEWAL_AT_RISK: "Renewal in 30 days while health is low: 35.0 (at risk).",
    }
    never = next(x for x in result.signals if x.kind is K.DECISION_MAKER_INACTIVE)
    assert math.isinf(never.measure)


def test_thresholds_are_configurable_and_must_leave_room_to_clear() -> None:
    silence = {**DEFAULT_THRESHOLDS, K.SILENCE: Threshold(20, 10, Severity.LOW)}
    config = SignalConfig(thresholds=silence)
    snapshot = AccountSnapshot({s.DAYS_SINCE_LAST_CONTACT: 25}, now=NOW)
    assert assess(None, snapshot, None, now=NOW, config=config).state.kinds == {K.SILENCE}
    with pytest.raises(ValueError, match="silence: clear_at"):
        SignalConfig(thresholds={K.SILENCE: Threshold(20, 20, Severity.LOW)})
    with pytest.raises(ValueError, match="logins_falling: clear_at"):
        SignalConfig(thresholds={K.LOGINS_FALLING: Threshold(0.5, 0.4, Severity.LOW)})


@pytest.mark.parametrize(
    ("recent", "baseline", "says"),
    [
        (40_000, 0, "40,000 rows exported in the last 7 days, none in the usual week."),
        (
            20_700,
            700,
            "20,700 rows exported in the last 7 days, 29.6x the usual (weekly average 700).",
        ),
        (
            60_000,
            1_200,
            "60,000 rows exported in the last 7 days, 50.0x the usual (weekly average 1,200).",
        ),
    ],
)
def test_a_burst_sentence_agrees_with_its_own_figures(
    recent: float, baseline: float, says: str
) -> None:
    """The ratio is of the figures shown, never of the floored baseline, and a usual week
    of nothing is said in words (not "40.0x the usual (weekly average 0)")."""
    snapshot = AccountSnapshot(
        {s.EXPORT_ROWS_7D: recent, s.EXPORT_ROWS_28D_WEEKLY_AVG: baseline}, now=NOW
    )
    (signal,) = assess(None, snapshot, None, now=NOW).signals
    assert says in signal.sentence
    assert signal.figures == {"rows_7d": recent, "weekly_average": baseline}


def test_an_api_burst_from_nothing_says_so() -> None:
    snapshot = AccountSnapshot({s.API_CALLS_1D: 3_000, s.API_CALLS_28D_DAILY_AVG: 0}, now=NOW)
    (signal,) = assess(None, snapshot, None, now=NOW).signals
    assert signal.sentence == (
        "An API-call burst: 3,000 calls in the last day, none in the usual day. "
        "Data may be being pulled out."
    )
