"""The churn early-warning signals: what each one measures, its thresholds and its sentence.

Every signal measures one number. A signal is raised when the measure reaches ``raise_at``
and, once raised, cleared only when it is comfortably back at ``clear_at`` (hysteresis: a
measure hovering at the threshold does not flap). For "above" signals ``clear_at`` is below
``raise_at``; for "below" signals it is above. Defaults:

============================  =========================================  ======  =====  ========
signal                        measure                                    raise   clear  severity
============================  =========================================  ======  =====  ========
logins_falling                logins 7d / 28-day weekly average          <= 0.5  >= 0.7 medium
data_export                   export rows 7d / weekly average (floored)  >= 5x   <= 2x  high
api_burst                     API calls 1d / daily average (floored)     >= 5x   <= 2x  medium
silence                       days since feature request/ticket/contact  >= 60   <= 30  low
decision_maker_inactive       days since the decision maker was active   >= 30   <= 14  medium
admin_inactive                days since the admin was active            >= 30   <= 14  medium
invoice_overdue               1 when ``crm.invoice_status`` is overdue   >= 1    <= 0   high
seat_utilisation_falling      points of seat utilisation lost in 28 days >= 20   <= 10  medium
renewal_at_risk               health, while renewal is within 90 days    <= 40   >= 50  high
============================  =========================================  ======  =====  ========

Login trend needs a weekly baseline of at least 3 logins; baselines of exports and API calls
are floored (1000 rows, 500 calls) so a tiny account's first export is not a "burst". A
sentence's ratio is of the figures it states, and a usual week (or day) of none says so. A
role never active counts as inactive for ever; a role the account has no contact in, or any
missing metric, gives no measure. A renewal more than 90 days away or already passed
measures as full health (nothing to warn about).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import msgspec

from services.scoring.health import snapshot as s
from services.scoring.health.score import HealthScore
from services.scoring.health.snapshot import AccountSnapshot


class SignalKind(StrEnum):
    LOGINS_FALLING = "logins_falling"
    DATA_EXPORT = "data_export"
    API_BURST = "api_burst"
    SILENCE = "silence"
    DECISION_MAKER_INACTIVE = "decision_maker_inactive"
    ADMIN_INACTIVE = "admin_inactive"
    INVOICE_OVERDUE = "invoice_overdue"
    SEAT_UTILISATION_FALLING = "seat_utilisation_falling"
    RENEWAL_AT_RISK = "renewal_at_risk"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


BELOW = frozenset({SignalKind.LOGINS_FALLING, SignalKind.RENEWAL_AT_RISK})
"""Signals raised when their measure falls; all others are raised when it rises."""


@dataclass(frozen=True, slots=True)
class Threshold:
    raise_at: float
    clear_at: float
    severity: Severity


DEFAULT_THRESHOLDS: Mapping[SignalKind, Threshold] = MappingProxyType(
    {
        SignalKind.LOGINS_FALLING: Threshold(0.5, 0.7, Severity.MEDIUM),
        SignalKind.DATA_EXPORT: Threshold(5, 2, Severity.HIGH),
        SignalKind.API_BURST: Threshold(5, 2, Severity.MEDIUM),
        SignalKind.SILENCE: Threshold(60, 30, Severity.LOW),
        SignalKind.DECISION_MAKER_INACTIVE: Threshold(30, 14, Severity.MEDIUM),
        SignalKind.ADMIN_INACTIVE: Threshold(30, 14, Severity.MEDIUM),
        SignalKind.INVOICE_OVERDUE: Threshold(1, 0, Severity.HIGH),
        SignalKind.SEAT_UTILISATION_FALLING: Threshold(20, 10, Severity.MEDIUM),
        SignalKind.RENEWAL_AT_RISK: Threshold(40, 50, Severity.HIGH),
    }
)


@dataclass(frozen=True, slots=True)
class SignalConfig:
    """Thresholds per signal (a signal left out is never raised) and the measures' floors."""

    thresholds: Mapping[SignalKind, Threshold] = field(default_factory=lambda: DEFAULT_THRESHOLDS)
    min_login_baseline: float = 3.0
    export_rows_floor: float = 1000.0
    api_calls_floor: float = 500.0
    renewal_window_days: float = 90.0
    high_from_signals: int = 3
    medium_from_signals: int = 2
    dwell_seconds: int = 3600
    """How long (event time) a new risk level must hold before it is announced."""

    def __post_init__(self) -> None:
        for kind, t in self.thresholds.items():
            comfortable = t.clear_at > t.raise_at if kind in BELOW else t.clear_at < t.raise_at
            if not comfortable:
                raise ValueError(f"{kind}: clear_at must be on the healthy side of raise_at")

    def raises(self, kind: SignalKind, measure: float) -> bool:
        t = self.thresholds[kind]
        return measure <= t.raise_at if kind in BELOW else measure >= t.raise_at

    def clears(self, kind: SignalKind, measure: float) -> bool:
        t = self.thresholds[kind]
        return measure >= t.clear_at if kind in BELOW else measure <= t.clear_at


class Reading(msgspec.Struct, frozen=True, gc=False):
    """A signal's measure, how to say the sentence a CSM reads when it is raised (said only
    then: most readings raise nothing), and the figures the sentence states (by name, for
    templates: ``rows_7d``, ``weekly_average`` ...)."""

    measure: float
    say: Callable[[], str]
    figures: Mapping[str, float | None] = msgspec.field(default_factory=dict)


class Context(msgspec.Struct, frozen=True, gc=False):
    snapshot: AccountSnapshot
    health: HealthScore | None
    config: SignalConfig
    now: int


def _n(value: float) -> str:
    return f"{value:,.0f}" if abs(value - round(value)) < 0.05 else f"{value:,.1f}"


def logins_falling(c: Context) -> Reading | None:
    recent = c.snapshot.metric(s.LOGINS_7D)
    baseline = c.snapshot.metric(s.LOGINS_28D_WEEKLY_AVG)
    if recent is None or baseline is None or baseline < c.config.min_login_baseline:
        return None
    ratio = recent / baseline
    return Reading(
        ratio,
        lambda: (
            f"Logins are clearly falling: {_n(recent)} in the last 7 days against a weekly "
            f"average of {_n(baseline)} over 28 days ({ratio:.0%} of usual)."
        ),
        {"logins_7d": recent, "weekly_average": baseline},
    )


def _burst(
    recent: float | None, baseline: float | None, floor: float
) -> tuple[float, float, float] | None:
    if recent is None or baseline is None:
        return None
    return recent, baseline, recent / max(baseline, floor)


def _against_usual(recent: float, baseline: float, period: str, average: str) -> str:
    """How ``recent`` compares with the usual ``period`` in words that agree with the
    figures shown: the plain ratio to the average, or "none in the usual week" when the
    average shows as 0 (the measure itself is against the floored baseline)."""
    if _n(baseline) == "0":
        return f"none in the usual {period}"
    return f"{recent / baseline:,.1f}x the usual ({average} average {_n(baseline)})"


def data_export(c: Context) -> Reading | None:
    got = _burst(
        c.snapshot.metric(s.EXPORT_ROWS_7D),
        c.snapshot.metric(s.EXPORT_ROWS_28D_WEEKLY_AVG),
        c.config.export_rows_floor,
    )
    if got is None:
        return None
    recent, baseline, ratio = got
    return Reading(
        ratio,
        lambda: (
            f"A large data export: {_n(recent)} rows exported in the last 7 days, "
            f"{_against_usual(recent, baseline, 'week', 'weekly')}. Data may be being pulled out."
        ),
        {"rows_7d": recent, "weekly_average": baseline},
    )


def api_burst(c: Context) -> Reading | None:
    got = _burst(
        c.snapshot.metric(s.API_CALLS_1D),
        c.snapshot.metric(s.API_CALLS_28D_DAILY_AVG),
        c.config.api_calls_floor,
    )
    if got is None:
        return None
    recent, baseline, ratio = got
    return Reading(
        ratio,
        lambda: (
            f"An API-call burst: {_n(recent)} calls in the last day, "
            f"{_against_usual(recent, baseline, 'day', 'daily')}. Data may be being pulled out."
        ),
        {"calls_1d": recent, "daily_average": baseline},
    )


def silence(c: Context) -> Reading | None:
    days = c.snapshot.metric(s.DAYS_SINCE_LAST_CONTACT)
    if days is None:
        return None
    return Reading(
        days,
        lambda: (
            f"Silence: no feature request, ticket or contact with the team for {_n(days)} days."
        ),
        {"days": days},
    )


def _inactive(role: str, name: str) -> Callable[[Context], Reading | None]:
    def read(c: Context) -> Reading | None:
        if role not in c.snapshot.last_seen_days:
            return None
        days = c.snapshot.last_seen_days[role]
        if days is None:
            return Reading(math.inf, lambda: f"The {name} has never been active.", {"days": None})
        return Reading(
            days, lambda: f"The {name} has not been active for {_n(days)} days.", {"days": days}
        )

    return read


def invoice_overdue(c: Context) -> Reading | None:
    status = c.snapshot.facts.get(s.INVOICE_STATUS)
    if not isinstance(status, str):
        return None
    return Reading(1.0 if status == "overdue" else 0.0, lambda: "An invoice is overdue.")


def seat_utilisation_falling(c: Context) -> Reading | None:
    now = c.snapshot.metric(s.SEAT_UTILISATION)
    before = c.snapshot.metric(s.SEAT_UTILISATION_28D_AGO)
    if now is None or before is None:
        return None
    lost = round((before - now) * 100, 6)
    return Reading(
        lost,
        lambda: (
            f"Seat utilisation is falling: {before:.0%} of paid seats were active 28 days ago, "
            f"{now:.0%} now."
        ),
        {"utilisation": now, "utilisation_28d_ago": before},
    )


def renewal_at_risk(c: Context) -> Reading | None:
    days = c.snapshot.days_to_renewal(c.now)
    if days is None:
        return None
    if not 0 <= days <= c.config.renewal_window_days:
        return Reading(100.0, lambda: "No renewal within the window.")
    if c.health is None:
        return None
    health = c.health
    return Reading(
        health.score,
        lambda: (
            f"Renewal in {_n(days)} days while health is low: {health.score:.1f} "
            f"({health.band.label})."
        ),
        {"days_to_renewal": days, "health": health.score},
    )


READERS: Mapping[SignalKind, Callable[[Context], Reading | None]] = MappingProxyType(
    {
        SignalKind.LOGINS_FALLING: logins_falling,
        SignalKind.DATA_EXPORT: data_export,
        SignalKind.API_BURST: api_burst,
        SignalKind.SILENCE: silence,
        SignalKind.DECISION_MAKER_INACTIVE: _inactive(s.DECISION_MAKER, "decision maker"),
        SignalKind.ADMIN_INACTIVE: _inactive(s.ADMIN, "admin"),
        SignalKind.INVOICE_OVERDUE: invoice_overdue,
        SignalKind.SEAT_UTILISATION_FALLING: seat_utilisation_falling,
        SignalKind.RENEWAL_AT_RISK: renewal_at_risk,
    }
)
