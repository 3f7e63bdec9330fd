import pytest

from services.scoring.health import snapshot as s
from services.scoring.health.components import (
    Thresholds,
    billing_state,
    login_trend,
    relationship,
    seat_activation,
    support_load,
    usage_breadth,
    usage_depth,
)
from services.scoring.health.snapshot import AccountSnapshot, Ramp

T = Thresholds()


def metrics(**values: float | None) -> AccountSnapshot:
    return AccountSnapshot(metrics=values)


def test_ramp_rising_and_falling() -> None:
    rising, falling = Ramp(10, 20), Ramp(5, 0)
    assert [rising(x) for x in (0, 10, 15, 20, 30)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert [falling(x) for x in (0, 1, 5, 9)] == [1.0, 0.8, 0.0, 0.0]
    with pytest.raises(ValueError, match="two different ends"):
        Ramp(1, 1)


@pytest.mark.parametrize(("actions", "value"), [(0, 0.0), (10, 0.5), (20, 1.0), (40, 1.0)])
def test_usage_depth(actions: float, value: float) -> None:
    reading = usage_depth(metrics(**{s.ACTIONS_PER_ACTIVE_USER_7D: actions}), T)
    assert reading is not None
    assert reading.value == pytest.approx(value)


@pytest.mark.parametrize(("features", "value"), [(0, 0.0), (1, 0.0), (4.5, 0.5), (8, 1.0)])
def test_usage_breadth(features: float, value: float) -> None:
    reading = usage_breadth(metrics(**{s.FEATURES_USED_28D: features}), T)
    assert reading is not None
    assert reading.value == pytest.approx(value)
    assert reading.detail == f"{features:g} features used in 28 days"


@pytest.mark.parametrize(("active", "value"), [(1, 0.0), (2, 0.0), (5, 0.5), (8, 1.0), (10, 1.0)])
def test_seat_activation_of_ten_paid_seats(active: float, value: float) -> None:
    reading = seat_activation(metrics(**{s.ACTIVE_SEATS_28D: active, s.PAID_SEATS: 10}), T)
    assert reading is not None
    assert reading.value == pytest.approx(value)


def test_seat_activation_without_paid_seats_is_missing() -> None:
    assert seat_activation(metrics(**{s.ACTIVE_SEATS_28D: 3, s.PAID_SEATS: 0}), T) is None
    assert seat_activation(metrics(**{s.ACTIVE_SEATS_28D: 3}), T) is None


@pytest.mark.parametrize(
    ("recent", "value"), [(10, 0.0), (20, 0.0), (30, 0.5), (40, 1.0), (80, 1.0)]
)
def test_login_trend_against_weekly_baseline_of_forty(recent: float, value: float) -> None:
    reading = login_trend(metrics(**{s.LOGINS_7D: recent, s.LOGINS_28D_WEEKLY_AVG: 40}), T)
    assert reading is not None
    assert reading.value == pytest.approx(value)


def test_login_trend_without_baseline_is_missing() -> None:
    assert login_trend(metrics(**{s.LOGINS_7D: 5, s.LOGINS_28D_WEEKLY_AVG: 0}), T) is None
    assert login_trend(metrics(**{s.LOGINS_7D: 5, s.LOGINS_28D_WEEKLY_AVG: None}), T) is None


@pytest.mark.parametrize(("tickets", "value"), [(0, 1.0), (1, 0.8), (5, 0.0), (9, 0.0)])
def test_support_load(tickets: float, value: float) -> None:
    reading = support_load(metrics(**{s.OPEN_TICKETS: tickets}), T)
    assert reading is not None
    assert reading.value == pytest.approx(value)


@pytest.mark.parametrize(
    ("status", "value"), [("paid", 1.0), ("open", 0.8), ("overdue", 0.0), ("void", None)]
)
def test_billing_state(status: str, value: float | None) -> None:
    reading = billing_state(AccountSnapshot(facts={s.INVOICE_STATUS: status}), T)
    assert (reading.value if reading else None) == value


def test_billing_thresholds_are_configurable() -> None:
    custom = Thresholds(billing={"overdue": 0.25})
    reading = billing_state(AccountSnapshot(facts={s.INVOICE_STATUS: "overdue"}), custom)
    assert reading is not None
    assert reading.value == 0.25


@pytest.mark.parametrize(("days", "value"), [(0, 1.0), (14, 1.0), (37, 0.5), (60, 0.0), (90, 0.0)])
def test_relationship_by_days_since_decision_maker_was_active(days: float, value: float) -> None:
    reading = relationship(AccountSnapshot(last_seen_days={s.DECISION_MAKER: days}), T)
    assert reading is not None
    assert reading.value == pytest.approx(value)


def test_relationship_averages_roles_and_counts_never_active_as_zero() -> None:
    snap = AccountSnapshot(last_seen_days={s.DECISION_MAKER: None, s.ADMIN: 3})
    reading = relationship(snap, T)
    assert reading is not None
    assert reading.value == 0.5
    assert reading.detail == "decision maker never active, admin last active 3 days ago"


def test_missing_inputs_leave_every_component_out() -> None:
    empty = AccountSnapshot()
    readers = (usage_depth, usage_breadth, seat_activation, login_trend, support_load)
    assert all(read(empty, T) is None for read in (*readers, billing_state, relationship))
