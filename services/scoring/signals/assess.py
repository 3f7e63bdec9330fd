"""``assess(previous, snapshot, health, *, now) -> RiskAssessment``: signals and risk level.

Rules:

* A signal not raised before is raised when its measure reaches ``raise_at``; a raised one
  stays raised until its measure is back at ``clear_at`` (see :mod:`.rules`). A raised
  signal whose measure is missing stays raised: no data is no sign of recovery.
* Risk level: high with any high-severity signal or with 3 or more signals raised; medium
  with any medium-severity signal or with 2 or more; low otherwise (none, or one low).
* Dwell (hysteresis in time): a new level is *announced* only once it has held for
  ``dwell_seconds`` of the account's **event time**: the latest time of its events (or of
  a sweep, which stands for "nothing happened until now"), never later than ``now`` and
  never going back. A backfill of old events does not move it, so a level flapping while
  history arrives is not announced; the level it settles on is, once it has held. The
  first assessment announces its level as it is (there is nothing to change from).
* Events: ``risk_raised`` when the announced level went up, ``risk_cleared`` when it went
  down; otherwise ``risk_raised`` when a signal was newly raised, ``risk_cleared`` when
  one cleared; otherwise none. Each carries the announced level and every signal raised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgspec

from services.scoring.health.score import HealthScore
from services.scoring.health.snapshot import AccountSnapshot
from services.scoring.signals.rules import READERS, Context, Severity, SignalConfig, SignalKind
from shared.contracts.scores import RiskLevel, ScoreKind, SignalReasonRecord

DEFAULT_CONFIG = SignalConfig()


class Signal(msgspec.Struct, frozen=True, gc=False):
    """A raised signal: its measure when last read, its threshold, its sentence and the
    figures the sentence states."""

    kind: SignalKind
    severity: Severity
    measure: float
    raise_at: float
    sentence: str
    figures: Mapping[str, float | None] = msgspec.field(default_factory=dict)

    def as_reason(self) -> SignalReasonRecord:
        """The signal as a score event's ``reasons`` entry (valid JSON: an infinite measure,
        a never-active role's, is ``None``)."""
        return SignalReasonRecord(
            signal=self.kind.value,
            severity=RiskLevel(self.severity.value),
            sentence=self.sentence,
            measure=_finite(self.measure),
            threshold=self.raise_at,
            figures={name: _finite(value) for name, value in self.figures.items()},
        )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class RiskState(msgspec.Struct, frozen=True, gc=False):
    """What the next assessment compares with: the signals raised, the level they add up
    to, when (``now``), the level last announced, the account's event time (``clock``) and,
    while ``level`` differs from ``announced``, the event time since when it has held."""

    level: RiskLevel
    signals: tuple[Signal, ...]
    assessed_at: int
    announced: RiskLevel
    clock: int
    pending_since: int | None = None

    @property
    def kinds(self) -> frozenset[SignalKind]:
        return frozenset(signal.kind for signal in self.signals)


class RiskAssessment(msgspec.Struct, frozen=True, gc=False):
    """The new state, what changed since the previous one, and the event due (if any)."""

    state: RiskState
    previous_level: RiskLevel | None
    raised: tuple[SignalKind, ...]
    cleared: tuple[SignalKind, ...]
    event: ScoreKind | None

    @property
    def level(self) -> RiskLevel:
        return self.state.level

    @property
    def announced(self) -> RiskLevel:
        return self.state.announced

    @property
    def signals(self) -> tuple[Signal, ...]:
        return self.state.signals

    def as_explanation(self) -> dict[str, Any]:
        """The ``explanation`` of a risk envelope (valid JSON: a never-active role's
        infinite measure is ``None``); its ``signals`` are ``signal_names``."""
        return {
            "level": self.announced.value,
            "previous_level": self.previous_level.value if self.previous_level else None,
            "assessed_level": self.level.value,
            "pending_since": self.state.pending_since,
            "raised": [k.value for k in self.raised],
            "cleared": [k.value for k in self.cleared],
            "signals": {
                s.kind.value: {
                    "severity": s.severity.value,
                    "measure": _finite(s.measure),
                    "threshold": s.raise_at,
                    "sentence": s.sentence,
                    "figures": {name: _finite(value) for name, value in s.figures.items()},
                }
                for s in self.signals
            },
        }

    @property
    def signal_names(self) -> list[str]:
        return [s.kind.value for s in self.signals]


def risk_level(signals: tuple[Signal, ...], config: SignalConfig = DEFAULT_CONFIG) -> RiskLevel:
    """The level the raised signals add up to (rule in the module docstring)."""
    severities = {signal.severity for signal in signals}
    if Severity.HIGH in severities or len(signals) >= config.high_from_signals:
        return RiskLevel.HIGH
    if Severity.MEDIUM in severities or len(signals) >= config.medium_from_signals:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW


def assess(
    previous: RiskState | None,
    snapshot: AccountSnapshot,
    health: HealthScore | None,
    *,
    now: int,
    at: int | None = None,
    config: SignalConfig = DEFAULT_CONFIG,
) -> RiskAssessment:
    """Which signals are raised at ``now``, given the ones raised at ``previous``, and the
    level announced at event time ``at`` (default ``now``; see the module docstring)."""
    before = {signal.kind: signal for signal in previous.signals} if previous else {}
    context = Context(snapshot, health, config, now)
    signals: list[Signal] = []
    raised: list[SignalKind] = []
    cleared: list[SignalKind] = []
    for kind, reader in READERS.items():
        threshold = config.thresholds.get(kind)
        if threshold is None:
            if kind in before:
                cleared.append(kind)
            continue
        reading = reader(context)
        was = before.get(kind)
        if reading is None:
            if was is not None:
                signals.append(was)
            continue
        if was is not None and config.clears(kind, reading.measure):
            cleared.append(kind)
        elif was is not None or config.raises(kind, reading.measure):
            if was is None:
                raised.append(kind)
            signals.append(
                Signal(
                    kind,
                    threshold.severity,
                    reading.measure,
                    threshold.raise_at,
                    reading.say(),
                    reading.figures,
                )
            )
    ordered = tuple(sorted(signals, key=lambda s: _SEVERITY_ORDER[s.severity]))
    state = announce(previous, risk_level(ordered, config), ordered, now=now, at=at, config=config)
    return RiskAssessment(
        state,
        previous.announced if previous else None,
        tuple(raised),
        tuple(cleared),
        _event(previous, state, raised=bool(raised), cleared=bool(cleared)),
    )


def announce(
    previous: RiskState | None,
    level: RiskLevel,
    signals: tuple[Signal, ...],
    *,
    now: int,
    at: int | None,
    config: SignalConfig,
) -> RiskState:
    """The new state: the account's event time moved to ``at`` (never back, never past
    ``now``), and ``level`` announced when it has held for the dwell time."""
    moment = now if at is None else min(at, now)
    clock = moment if previous is None else max(previous.clock, moment)
    if previous is None or level is previous.announced:
        return RiskState(level, signals, now, level, clock)
    held = previous.pending_since if previous.level is level else None
    since = clock if held is None else held
    if clock - since >= config.dwell_seconds:
        return RiskState(level, signals, now, level, clock)
    return RiskState(level, signals, now, previous.announced, clock, since)


def _event(
    previous: RiskState | None, state: RiskState, *, raised: bool, cleared: bool
) -> ScoreKind | None:
    if previous is not None and state.announced is not previous.announced:
        up = _RANK[state.announced] > _RANK[previous.announced]
        return ScoreKind.RISK_RAISED if up else ScoreKind.RISK_CLEARED
    return ScoreKind.RISK_RAISED if raised else ScoreKind.RISK_CLEARED if cleared else None


_SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}
_RANK = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2}
