"""``assess(previous, snapshot, health, *, now) -> RiskAssessment``: signals and risk level.

Rules:

* A signal not raised before is raised when its measure reaches ``raise_at``; a raised one
  stays raised until its measure is back at ``clear_at`` (see :mod:`.rules`). A raised
  signal whose measure is missing stays raised: no data is no sign of recovery.
* Risk level: high with any high-severity signal or with 3 or more signals raised; medium
  with any medium-severity signal or with 2 or more; low otherwise (none, or one low).
* Events: ``risk_raised`` when a signal was newly raised; otherwise ``risk_cleared`` when
  one cleared; otherwise none. Both carry the level and every signal still raised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from services.scoring.health.score import HealthScore
from services.scoring.health.snapshot import AccountSnapshot
from services.scoring.signals.rules import READERS, Context, Severity, SignalConfig, SignalKind
from shared.contracts.scores import RiskLevel, ScoreKind

DEFAULT_CONFIG = SignalConfig()


@dataclass(frozen=True, slots=True)
class Signal:
    """A raised signal: its measure when last read, its threshold, and its sentence."""

    kind: SignalKind
    severity: Severity
    measure: float
    raise_at: float
    sentence: str


@dataclass(frozen=True, slots=True)
class RiskState:
    """What the next assessment compares with: the signals raised, the level, and when."""

    level: RiskLevel
    signals: tuple[Signal, ...]
    assessed_at: int

    @property
    def kinds(self) -> frozenset[SignalKind]:
        return frozenset(signal.kind for signal in self.signals)


@dataclass(frozen=True, slots=True)
class RiskAssessment:
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
    def signals(self) -> tuple[Signal, ...]:
        return self.state.signals

    def as_explanation(self) -> dict[str, Any]:
        """The ``explanation`` of a risk envelope (valid JSON: a never-active role's
        infinite measure is ``None``); its ``signals`` are ``signal_names``."""
        return {
            "level": self.level.value,
            "previous_level": self.previous_level.value if self.previous_level else None,
            "raised": [k.value for k in self.raised],
            "cleared": [k.value for k in self.cleared],
            "signals": {
                s.kind.value: {
                    "severity": s.severity.value,
                    "measure": s.measure if math.isfinite(s.measure) else None,
                    "threshold": s.raise_at,
                    "sentence": s.sentence,
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
    config: SignalConfig = DEFAULT_CONFIG,
) -> RiskAssessment:
    """Which signals are raised at ``now``, given the ones raised at ``previous``."""
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
                    kind, threshold.severity, reading.measure, threshold.raise_at, reading.sentence
                )
            )
    ordered = tuple(sorted(signals, key=lambda s: _SEVERITY_ORDER[s.severity]))
    event = ScoreKind.RISK_RAISED if raised else ScoreKind.RISK_CLEARED if cleared else None
    return RiskAssessment(
        RiskState(risk_level(ordered, config), ordered, now),
        previous.level if previous else None,
        tuple(raised),
        tuple(cleared),
        event,
    )


_SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}
