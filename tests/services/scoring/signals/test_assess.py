import msgspec
import pytest

from services.scoring.health import snapshot as s
from services.scoring.health.snapshot import DAY, AccountSnapshot
from services.scoring.signals.assess import RiskState, Signal, assess, risk_level
from services.scoring.signals.rules import (
    DEFAULT_THRESHOLDS,
    Severity,
    SignalConfig,
    SignalKind,
    Threshold,
)
from shared.contracts.scores import RiskLevel, ScoreKind

K = SignalKind
START = 1_700_000_000
NO_DWELL = SignalConfig(dwell_seconds=0)
"""Value hysteresis alone: every level is announced as soon as it is assessed."""


def signal(severity: Severity, kind: SignalKind = K.SILENCE) -> Signal:
    return Signal(kind, severity, 0.0, 0.0, "")


@pytest.mark.parametrize(
    ("severities", "level"),
    [
        ((), RiskLevel.LOW),
        ((Severity.LOW,), RiskLevel.LOW),
        ((Severity.LOW, Severity.LOW), RiskLevel.MEDIUM),
        ((Severity.MEDIUM,), RiskLevel.MEDIUM),
        ((Severity.MEDIUM, Severity.LOW), RiskLevel.MEDIUM),
        ((Severity.LOW, Severity.LOW, Severity.LOW), RiskLevel.HIGH),
        ((Severity.HIGH,), RiskLevel.HIGH),
    ],
)
def test_risk_level_rule(severities: tuple[Severity, ...], level: RiskLevel) -> None:
    assert risk_level(tuple(signal(x) for x in severities)) is level


def logins(recent: float, day: int, baseline: float = 40) -> AccountSnapshot:
    return AccountSnapshot(
        {s.LOGINS_7D: recent, s.LOGINS_28D_WEEKLY_AVG: baseline}, now=START + day * DAY
    )


def test_hysteresis_raise_at_half_clear_only_at_seventy_percent() -> None:
    state: RiskState | None = None
    seen: list[tuple[list[SignalKind], ScoreKind | None]] = []
    for day, recent in enumerate([21, 20, 24, 27.6, 28, 24, 20]):
        result = assess(state, logins(recent, day), None, now=START + day * DAY, config=NO_DWELL)
        seen.append((sorted(result.state.kinds), result.event))
        state = result.state
    none: list[SignalKind] = []
    up, down = ([K.LOGINS_FALLING], ScoreKind.RISK_RAISED), (none, ScoreKind.RISK_CLEARED)
    held, calm = ([K.LOGINS_FALLING], None), (none, None)
    assert seen == [calm, up, held, held, down, calm, up]


def test_seeded_decline_raises_then_clears_when_usage_recovers() -> None:
    def day(n: int, logins: float, exports: float) -> AccountSnapshot:
        return AccountSnapshot(
            {
                s.LOGINS_7D: logins,
                s.LOGINS_28D_WEEKLY_AVG: 40,
                s.EXPORT_ROWS_7D: exports,
                s.EXPORT_ROWS_28D_WEEKLY_AVG: 1_200,
                s.API_CALLS_1D: 900,
                s.API_CALLS_28D_DAILY_AVG: 1_000,
            },
            {s.INVOICE_STATUS: "paid"},
            {s.DECISION_MAKER: 5, s.ADMIN: 2},
            START + n * DAY,
        )

    healthy = assess(None, day(0, 42, 1_000), None, now=START, config=NO_DWELL)
    assert (healthy.level, healthy.signals, healthy.event) == (RiskLevel.LOW, (), None)

    decline = assess(healthy.state, day(7, 12, 60_000), None, now=START + 7 * DAY, config=NO_DWELL)
    assert decline.raised == (K.LOGINS_FALLING, K.DATA_EXPORT)
    assert decline.event is ScoreKind.RISK_RAISED
    assert (decline.previous_level, decline.level) == (RiskLevel.LOW, RiskLevel.HIGH)
    assert [x.sentence for x in decline.signals] == [
        "A large data export: 60,000 rows exported in the last 7 days, 50.0x the usual "
        "(weekly average 1,200). Data may be being pulled out.",
        "Logins are clearly falling: 12 in the last 7 days against a weekly average of 40 "
        "over 28 days (30% of usual).",
    ]
    assert decline.signal_names == ["data_export", "logins_falling"]
    explanation = decline.as_explanation()
    assert explanation["level"] == "high"
    assert explanation["signals"]["data_export"]["severity"] == "high"
    assert explanation["signals"]["logins_falling"]["threshold"] == 0.5

    partial = assess(decline.state, day(10, 25, 3_000), None, now=START + 10 * DAY, config=NO_DWELL)
    assert (partial.event, partial.state.kinds) == (None, decline.state.kinds)

    recovered = assess(
        partial.state, day(21, 38, 1_100), None, now=START + 21 * DAY, config=NO_DWELL
    )
    assert recovered.cleared == (K.LOGINS_FALLING, K.DATA_EXPORT)
    assert recovered.raised == ()
    assert recovered.event is ScoreKind.RISK_CLEARED
    assert (recovered.previous_level, recovered.level) == (RiskLevel.HIGH, RiskLevel.LOW)
    assert recovered.state.assessed_at == START + 21 * DAY


def test_missing_data_keeps_a_raised_signal() -> None:
    first = assess(None, logins(10, 0), None, now=START)
    blind = assess(first.state, AccountSnapshot(now=START + DAY), None, now=START + DAY)
    assert blind.signals == first.signals
    assert (blind.event, blind.cleared) == (None, ())


def test_raised_and_cleared_together_is_a_raise() -> None:
    first = assess(None, logins(10, 0), None, now=START)
    both = AccountSnapshot(
        {s.LOGINS_7D: 40, s.LOGINS_28D_WEEKLY_AVG: 40, s.DAYS_SINCE_LAST_CONTACT: 61},
        now=START + DAY,
    )
    result = assess(first.state, both, None, now=START + DAY)
    assert (result.raised, result.cleared) == ((K.SILENCE,), (K.LOGINS_FALLING,))
    assert result.event is ScoreKind.RISK_RAISED
    assert result.level is RiskLevel.LOW


def test_a_signal_dropped_from_the_config_clears() -> None:
    first = assess(None, logins(10, 0), None, now=START)
    without: dict[SignalKind, Threshold] = {
        k: v for k, v in DEFAULT_THRESHOLDS.items() if k is not K.LOGINS_FALLING
    }
    config = SignalConfig(thresholds=without)
    result = assess(first.state, logins(10, 1), None, now=START + DAY, config=config)
    assert (result.cleared, result.event) == ((K.LOGINS_FALLING,), ScoreKind.RISK_CLEARED)


def test_a_signal_carries_its_figures_as_a_reason() -> None:
    result = assess(None, logins(12, 0), None, now=START)
    (reason,) = [msgspec.structs.asdict(x.as_reason()) for x in result.signals]
    assert reason == {
        "signal": "logins_falling",
        "severity": "medium",
        "sentence": "Logins are clearly falling: 12 in the last 7 days against a weekly "
        "average of 40 over 28 days (30% of usual).",
        "measure": 0.3,
        "threshold": 0.5,
        "figures": {"logins_7d": 12, "weekly_average": 40},
    }


def test_a_backfill_flapping_within_seconds_announces_nothing() -> None:
    """Days of login history arriving within seconds move the assessed level low ->
    medium -> low -> medium -> high, but the account's event time stands still (the events
    are older than what it has seen), so no level is announced and no event says so."""
    calm = assess(None, logins(40, 0), None, now=START, at=START).state
    seen: list[ScoreKind | None] = []
    state = calm
    for i, recent in enumerate([15, 40, 15, 40, 15]):
        snapshot = logins(recent, 0)
        if i == 4:  # the last day also brings an overdue invoice: high
            snapshot = AccountSnapshot(
                {**snapshot.metrics}, {s.INVOICE_STATUS: "overdue"}, now=snapshot.now
            )
        result = assess(state, snapshot, None, now=START + 10 + i, at=START - (27 - i) * DAY)
        seen.append(None if result.announced is state.announced else result.event)
        state = result.state
    assert seen == [None] * 5
    assert (state.level, state.announced, state.pending_since) == (
        RiskLevel.HIGH,
        RiskLevel.LOW,
        START,
    )
    later = assess(state, state_snapshot_high(), None, now=START + 3600, at=START + 3600)
    assert (later.previous_level, later.announced) == (RiskLevel.LOW, RiskLevel.HIGH)
    assert later.event is ScoreKind.RISK_RAISED
    again = assess(later.state, state_snapshot_high(), None, now=START + 7200, at=START + 7200)
    assert (again.announced, again.event) == (RiskLevel.HIGH, None)


def state_snapshot_high() -> AccountSnapshot:
    return AccountSnapshot(
        {s.LOGINS_7D: 15, s.LOGINS_28D_WEEKLY_AVG: 40}, {s.INVOICE_STATUS: "overdue"}, now=START
    )


def test_a_level_must_hold_for_the_dwell_in_event_time() -> None:
    config = SignalConfig(dwell_seconds=3600)
    calm = assess(None, logins(40, 0), None, now=START, at=START, config=config)
    assert (calm.announced, calm.event) == (RiskLevel.LOW, None)
    medium = assess(calm.state, logins(15, 0), None, now=START + 60, at=START + 60, config=config)
    assert (medium.level, medium.announced, medium.state.pending_since) == (
        RiskLevel.MEDIUM,
        RiskLevel.LOW,
        START + 60,
    )
    # an hour of wall time with no later event: still not announced (event time stands)
    wall = assess(medium.state, logins(15, 0), None, now=START + 7200, at=START, config=config)
    assert wall.announced is RiskLevel.LOW
    # back to low resets the dwell; medium again starts it afresh
    back = assess(wall.state, logins(40, 0), None, now=START + 7300, at=START + 1000, config=config)
    assert (back.announced, back.state.pending_since) == (RiskLevel.LOW, None)
    again = assess(
        back.state, logins(15, 0), None, now=START + 7400, at=START + 2000, config=config
    )
    assert again.state.pending_since == START + 2000
    held = assess(
        again.state, logins(15, 0), None, now=START + 9000, at=START + 5600, config=config
    )
    assert (held.announced, held.event) == (RiskLevel.MEDIUM, ScoreKind.RISK_RAISED)


def test_event_time_never_passes_the_clock() -> None:
    config = SignalConfig(dwell_seconds=3600)
    calm = assess(None, logins(40, 0), None, now=START, at=START, config=config)
    future = assess(calm.state, logins(15, 0), None, now=START + 1, at=START + 10**6, config=config)
    assert (future.state.clock, future.announced) == (START + 1, RiskLevel.LOW)
