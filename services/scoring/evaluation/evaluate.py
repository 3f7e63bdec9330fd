""":func:`evaluate`: the one step that scores an account, purely. Everything per account
goes through it: the snapshot, the health score, the churn signals, the North Star, and the
score events due. Tier placement and per-tier diagnostics (``services/scoring/tiers``,
``services/scoring/diagnostics``) plug in here: they read the same snapshot and add
``tier_changed`` and ``diagnosis`` events and the account's tier to :class:`Findings`.

Score events:

* ``score_changed`` when health moved meaningfully (:func:`meaningful_change`: the first
  score, a band change, or 5 points);
* ``risk_raised`` when a signal was newly raised, else ``risk_cleared`` when one cleared.

Each event's id is a hash of the workspace, the account, the kind and ``cause`` (the id of
the event that led to the evaluation, or ``sweep:<epoch seconds>``), so the same finding
always has the same id.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.scoring.definitions import MetricDefinitions, Window
from services.scoring.evaluation.facts import AccountFacts
from services.scoring.evaluation.snapshot import build_snapshot
from services.scoring.health import (
    AccountSnapshot,
    Band,
    HealthConfig,
    HealthScore,
    meaningful_change,
    score_health,
)
from services.scoring.metrics import MetricStore, value
from services.scoring.signals import (
    RiskAssessment,
    RiskState,
    Severity,
    Signal,
    SignalConfig,
    SignalKind,
    assess,
)
from shared.contracts.scores import RiskLevel, ScoreEnvelope, ScoreKind


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """How health is weighted and where signals are raised."""

    health: HealthConfig = field(default_factory=HealthConfig)
    signals: SignalConfig = field(default_factory=SignalConfig)


@dataclass(frozen=True, slots=True)
class Findings:
    """What the next evaluation compares with: the last health, its band, the risk state
    and the tier."""

    health: float | None = None
    band: Band | None = None
    risk: RiskState | None = None
    tier: str | None = None

    def previous_health(self) -> HealthScore | None:
        if self.health is None or self.band is None:
            return None
        return HealthScore(self.health, self.band, (), ())


@dataclass(frozen=True, slots=True)
class NorthStar:
    """The workspace's North Star metric and the account's figure over ``window``."""

    metric_id: str
    name: str
    window: Window
    value: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric_id,
            "name": self.name,
            "window": self.window.name,
            "value": self.value,
        }


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An account scored at one moment, and the events due."""

    snapshot: AccountSnapshot
    findings: Findings
    health: HealthScore | None
    assessment: RiskAssessment
    north_star: NorthStar
    events: tuple[ScoreEnvelope, ...]

    def explanation(self) -> dict[str, Any]:
        """The account's current explanation: health, signals and the North Star."""
        return {
            "health": None if self.health is None else self.health.as_explanation(),
            "risk": self.assessment.as_explanation(),
            "north_star": self.north_star.as_json(),
        }


def evaluate(
    *,
    workspace_id: str,
    account_id: str,
    store: MetricStore,
    facts: AccountFacts,
    definitions: MetricDefinitions,
    previous: Findings,
    now: datetime,
    cause: str,
    config: ScoringConfig,
) -> Evaluation:
    """Score the account at ``now`` after ``previous``; see the module docstring."""
    seconds = int(now.timestamp())
    snapshot = build_snapshot(store, definitions, facts, now=seconds)
    health = score_health(snapshot, config.health)
    assessment = assess(previous.risk, snapshot, health, now=seconds, config=config.signals)
    star = north_star(store, definitions, now=seconds)
    events: list[ScoreEnvelope] = []
    before = previous.previous_health()

    def envelope(kind: ScoreKind, explanation: dict[str, Any]) -> ScoreEnvelope:
        return ScoreEnvelope(
            score_event_id=score_event_id(workspace_id, account_id, kind, cause),
            workspace_id=workspace_id,
            account_id=account_id,
            kind=kind,
            health=None if health is None else health.score,
            risk_level=assessment.level,
            tier=previous.tier,
            signals=assessment.signal_names,
            explanation={**explanation, "north_star": star.as_json()},
            occurred_at=now,
        )

    if health is not None and meaningful_change(before, health, config.health):
        events.append(
            envelope(
                ScoreKind.SCORE_CHANGED,
                {
                    **health.as_explanation(),
                    "previous": None if before is None else before.score,
                },
            )
        )
    if assessment.event is not None:
        events.append(
            envelope(
                assessment.event,
                {
                    **assessment.as_explanation(),
                    "health_band": None if health is None else health.band.value,
                },
            )
        )
    findings = Findings(
        health=previous.health if health is None else health.score,
        band=previous.band if health is None else health.band,
        risk=assessment.state,
        tier=previous.tier,
    )
    return Evaluation(snapshot, findings, health, assessment, star, tuple(events))


def north_star(store: MetricStore, definitions: MetricDefinitions, *, now: int) -> NorthStar:
    """The North Star over 28 days when it declares that window, else its longest one."""
    metric = definitions.get(definitions.north_star)
    windows = metric.windows or (Window.P28D,)
    window = Window.P28D if Window.P28D in windows else max(windows)
    return NorthStar(
        metric.id, metric.name, window, value(store, definitions, metric.id, window, now=now)
    )


def score_event_id(workspace_id: str, account_id: str, kind: ScoreKind, cause: str) -> str:
    """Deterministic: the same finding from the same cause has the same id."""
    text = f"{workspace_id}\x00{account_id}\x00{kind.value}\x00{cause}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def risk_to_json(state: RiskState) -> dict[str, Any]:
    """A risk state for storage (a never-active role's infinite measure as ``null``)."""
    return {
        "level": state.level.value,
        "assessed_at": state.assessed_at,
        "signals": [
            {
                "kind": s.kind.value,
                "severity": s.severity.value,
                "measure": s.measure if math.isfinite(s.measure) else None,
                "raise_at": s.raise_at,
                "sentence": s.sentence,
            }
            for s in state.signals
        ],
    }


def risk_from_json(document: Mapping[str, Any]) -> RiskState:
    """The state :func:`risk_to_json` stored."""
    return RiskState(
        RiskLevel(document["level"]),
        tuple(
            Signal(
                SignalKind(s["kind"]),
                Severity(s["severity"]),
                math.inf if s["measure"] is None else float(s["measure"]),
                float(s["raise_at"]),
                s["sentence"],
            )
            for s in document["signals"]
        ),
        int(document["assessed_at"]),
    )
