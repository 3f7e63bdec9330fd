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
        result = assess(state, logins(recent, day), None, now=START + day * DAY)
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

    healthy = assess(None, day(0, 42, 1_000), None, now=START)
    assert (healthy.level, healthy.signals, healthy.event) == (RiskLevel.LOW, (), None)

    decline = assess(healthy.state, day(7, 12, 60_000), None, now=START + 7 * DAY)
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

    partial = assess(decline.state, day(10, 25, 3_000), None, now=START + 10 * DAY)
    assert (partial.event, partial.state.kinds) == (None, decline.state.kinds)

    recovered = assess(partial.state, day(21, 38, 1_100), None, now=START + 21 * DAY)
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
