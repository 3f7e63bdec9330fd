""":func:`evaluate`: the one step that scores an account. Everything per account goes through
it: the snapshot, the health score, the churn signals, tier placement
(:mod:`services.scoring.tiers`), per-tier diagnostics (:mod:`services.scoring.diagnostics`),
the North Star, and the score events due. It is pure but for one input: the peer book, whose
distributions it moves to the account's new standing before diagnosing.

Score events, in this order:

* ``tier_changed`` when the account's tier figure moved it (placement, promotion,
  demotion) on the first growth path it is on whose tiers the metrics file binds; health
  weights and diagnostics then use the new tier;
* ``score_changed`` when health moved meaningfully (:func:`meaningful_change`: the first
  score, a band change, or 5 points);
* ``risk_raised`` when the announced risk level went up or a signal was newly raised, else
  ``risk_cleared`` (level down, or a signal cleared); every event carries the *announced*
  level, which changes only once the assessed one has held for the dwell time
  (:mod:`services.scoring.signals.assess`), and every raised signal as a ``reason``;
* ``diagnosis`` when the core problem (``path/tier/rule``) differs from the last one found
  (no event when none holds any more).

Each event's id is a hash of the workspace, the account, the kind and ``cause`` (the id of
the event that led to the evaluation, or ``sweep:<epoch seconds>``), so the same finding
always has the same id.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

import msgspec

from services.scoring.definitions import MetricDefinitions, Window
from services.scoring.definitions.compiled import PathDiagnostics, TierSource
from services.scoring.diagnostics import Diagnosis, PeerGroup, PeerStanding, diagnose, peer_updates
from services.scoring.evaluation.facts import AccountFacts
from services.scoring.evaluation.peers import PeerBook
from services.scoring.evaluation.snapshot import FigureMemo, SnapshotMetrics, build_snapshot
from services.scoring.health import (
    AccountSnapshot,
    Band,
    HealthConfig,
    HealthScore,
    meaningful_change,
    score_health,
)
from services.scoring.health import snapshot as names
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
from services.scoring.tiers import TierChange, place_account
from shared.contracts.scores import RiskLevel, ScoreKind, ScoreRecord
from shared.contracts.tiers import TierLadder


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """How health is weighted and where signals are raised, unless the metrics file's
    ``health`` and ``signals`` sections say."""

    health: HealthConfig = field(default_factory=HealthConfig)
    signals: SignalConfig = field(default_factory=SignalConfig)
    risk_dwell_seconds: int = 3600
    """How long a new risk level must hold (event time) before it is announced."""


@dataclass(frozen=True, slots=True)
class Findings:
    """What the next evaluation compares with: the last health, its band, the risk state,
    the tier, the last core problem's key and the peer standings the account contributes."""

    health: float | None = None
    band: Band | None = None
    risk: RiskState | None = None
    tier: str | None = None
    diagnosis: str | None = None
    standings: tuple[PeerStanding, ...] = ()
    figures: FigureMemo | None = field(default=None, compare=False, repr=False)
    """Whole-day figures of this evaluation the next one reuses where their buckets did not
    change (kept in memory only)."""

    def previous_health(self) -> HealthScore | None:
        if self.health is None or self.band is None:
            return None
        return HealthScore(self.health, self.band, (), ())


class NorthStar(msgspec.Struct, frozen=True, gc=False):
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


class Evaluation(msgspec.Struct, frozen=True, gc=False):
    """An account scored at one moment, and the events due."""

    snapshot: AccountSnapshot
    findings: Findings
    health: HealthScore | None
    assessment: RiskAssessment
    north_star: NorthStar
    events: tuple[ScoreRecord, ...]
    tier_change: TierChange | None = None
    diagnosis: Diagnosis | None = None

    def account_explanation(self) -> bytes:
        """What the account's row keeps of this evaluation, as JSON: the health score as
        computed (:func:`~services.scoring.health.health_explanation` renders it when read,
        as a ``score_changed`` event explains it) and the North Star. What changed at this
        evaluation (signals raised, a tier change, a core problem) is in its score events,
        the raised signals in the row's risk state."""
        kept = _AccountExplanation(self.health, self.north_star.as_json())
        return _ACCOUNT_EXPLANATION.encode(kept)


class _AccountExplanation(msgspec.Struct, frozen=True, gc=False):
    health: HealthScore | None
    north_star: dict[str, Any]


_ACCOUNT_EXPLANATION = msgspec.json.Encoder()


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
    ladders: Mapping[str, TierLadder] | None = None,
    peers: PeerBook | None = None,
    at: int | None = None,
) -> Evaluation:
    """Score the account at ``now`` after ``previous``; see the module docstring.

    ``ladders`` are the tiers of the workspace's growth paths by path id; ``peers`` the peer
    book diagnostics read (without one, no diagnosis); ``at`` the event time of what caused
    the evaluation (default ``now``: a sweep), for the risk level's dwell."""
    seconds = int(now.timestamp())
    snapshot = build_snapshot(store, definitions, facts, now=seconds, memo=previous.figures)
    figures = snapshot.metrics
    star = north_star(store, definitions, now=seconds, figures=figures)
    origin = _Origin(workspace_id, account_id, cause, now, star)
    events: list[ScoreRecord] = []
    ladders = ladders or {}
    source = tier_source(definitions, facts, ladders)
    change = _place(source, ladders, previous.tier, figures)
    tier = previous.tier if change is None else change.to_tier
    if change is not None:
        events.append(origin.announce(change, ScoreKind.TIER_CHANGED))
    if tier is not None:
        snapshot = msgspec.structs.replace(snapshot, facts={**snapshot.facts, names.TIER: tier})
    health_config = definitions.health or config.health
    health = score_health(snapshot, health_config)
    signal_config = _with_dwell(definitions.signals or config.signals, config.risk_dwell_seconds)
    assessment = assess(previous.risk, snapshot, health, now=seconds, at=at, config=signal_config)
    _add_health_events(events, origin, previous, health, health_config, assessment, tier)
    tiered = (None, None) if source is None else (source.path, tier)
    standings, found = diagnose_account(
        workspace_id, definitions, facts, tiered, snapshot.metrics, previous.standings, peers
    )
    key = None if found is None else found.key
    if found is not None and key != previous.diagnosis:
        events.append(origin.announce(found, ScoreKind.DIAGNOSIS))
    findings = Findings(
        health=previous.health if health is None else health.score,
        band=previous.band if health is None else health.band,
        risk=assessment.state,
        tier=tier,
        diagnosis=key,
        standings=standings,
        figures=figures.memo() if isinstance(figures, SnapshotMetrics) else None,
    )
    return Evaluation(snapshot, findings, health, assessment, star, tuple(events), change, found)


def _with_dwell(signals: SignalConfig, dwell_seconds: int) -> SignalConfig:
    """``signals`` with the worker's dwell (itself when it has it already: a copy would
    check its thresholds again)."""
    if signals.dwell_seconds == dwell_seconds:
        return signals
    return replace(signals, dwell_seconds=dwell_seconds)


def _place(
    source: TierSource | None,
    ladders: Mapping[str, TierLadder],
    tier: str | None,
    figures: Mapping[str, float | None],
) -> TierChange | None:
    """The account's tier change by ``source``'s figure, if any binding places it."""
    if source is None:
        return None
    return place_account(source, ladders[source.path], tier, figures.get(source.figure))


class _Origin(msgspec.Struct, frozen=True, gc=False):
    """What every score event of one evaluation shares: the account, why and when it was
    evaluated, and the North Star each event's explanation carries."""

    workspace_id: str
    account_id: str
    cause: str
    now: datetime
    star: NorthStar

    def event_id(self, kind: ScoreKind) -> str:
        return score_event_id(self.workspace_id, self.account_id, kind, self.cause)

    def announce(self, finding: TierChange | Diagnosis, kind: ScoreKind) -> ScoreRecord:
        """The ``kind`` event of a tier change or a diagnosis, with the North Star."""
        event = finding.envelope(
            score_event_id=self.event_id(kind),
            workspace_id=self.workspace_id,
            account_id=self.account_id,
            occurred_at=self.now,
        )
        return msgspec.structs.replace(
            event, explanation={**event.explanation, "north_star": self.star.as_json()}
        )


def _add_health_events(
    events: list[ScoreRecord],
    origin: _Origin,
    previous: Findings,
    health: HealthScore | None,
    health_config: HealthConfig,
    assessment: RiskAssessment,
    tier: str | None,
) -> None:
    """Append ``score_changed`` when health moved meaningfully, then the risk event due."""
    before = previous.previous_health()
    if health is not None and meaningful_change(before, health, health_config):
        explanation = {
            **health.as_explanation(),
            "previous": None if before is None else before.score,
        }
        events.append(
            _envelope(origin, ScoreKind.SCORE_CHANGED, explanation, health, assessment, tier)
        )
    if assessment.event is not None:
        explanation = {
            **assessment.as_explanation(),
            "health_band": None if health is None else health.band.value,
        }
        events.append(_envelope(origin, assessment.event, explanation, health, assessment, tier))


def _envelope(
    origin: _Origin,
    kind: ScoreKind,
    explanation: dict[str, Any],
    health: HealthScore | None,
    assessment: RiskAssessment,
    tier: str | None,
) -> ScoreRecord:
    return ScoreRecord(
        score_event_id=origin.event_id(kind),
        workspace_id=origin.workspace_id,
        account_id=origin.account_id,
        kind=kind,
        health=None if health is None else health.score,
        risk_level=assessment.announced,
        tier=tier,
        signals=assessment.signal_names,
        reasons=[signal.as_reason() for signal in assessment.signals],
        explanation={**explanation, "north_star": origin.star.as_json()},
        occurred_at=origin.now,
    )


def tier_source(
    definitions: MetricDefinitions, facts: AccountFacts, ladders: Mapping[str, TierLadder]
) -> TierSource | None:
    """The binding that places the account: the first in the metrics file whose growth path
    the account is on and has tiers."""
    for binding in definitions.tier_sources:
        if binding.path in facts.paths and binding.path in ladders:
            return binding
    return None


def diagnose_account(
    workspace_id: str,
    definitions: MetricDefinitions,
    facts: AccountFacts,
    tiered: tuple[str | None, str | None],
    figures: Mapping[str, float | None],
    previous: tuple[PeerStanding, ...],
    peers: PeerBook | None,
) -> tuple[tuple[PeerStanding, ...], Diagnosis | None]:
    """The account's new peer standings (one per growth path it is on that has diagnostic
    rules; its group is its tier on the path ``tiered`` names as (path, tier), the whole
    path on others), the peer book moved to them, and the first core problem found."""
    if peers is None:
        return previous, None
    tiered_path, tier = tiered
    prepared = _prepared(definitions)
    applying = [(r, read) for r, read in prepared.diagnostics if r.path in facts.paths]
    standings = tuple(
        PeerStanding.of(
            PeerGroup(rules.path, tier if rules.path == tiered_path else None), figures, read
        )
        for rules, read in applying
    )
    old = {s.group.path: s for s in previous}
    new = {s.group.path: s for s in standings}
    for path in sorted(old.keys() | new.keys()):
        peers.apply(workspace_id, peer_updates(old.get(path), new.get(path)))
    names = prepared.names
    for (rules, read), standing in zip(applying, standings, strict=True):
        group = standing.group
        found = diagnose(rules, group, figures, peers.peers(workspace_id, group, read), names)
        if found is not None:
            return standings, found
    return standings, None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What every evaluation under one set of definitions reads the same way."""

    diagnostics: tuple[tuple[PathDiagnostics, tuple[str, ...]], ...]
    """Each path's diagnostic rules with the figures they read."""
    names: Mapping[str, str]
    """Metric names by id."""


def _prepared(definitions: MetricDefinitions) -> _Prepared:
    found = _PREPARED.get(definitions.digest)
    if found is None:
        found = _PREPARED[definitions.digest] = _Prepared(
            tuple((rules, rules.figures) for rules in definitions.diagnostics),
            MappingProxyType({m.id: m.name for m in definitions.metrics}),
        )
        while len(_PREPARED) > MAX_PREPARED:
            _PREPARED.popitem(last=False)
    return found


MAX_PREPARED = 256
"""Sets of definitions (by content digest) kept prepared: one per workspace in use."""
_PREPARED: OrderedDict[str, _Prepared] = OrderedDict()


def north_star(
    store: MetricStore,
    definitions: MetricDefinitions,
    *,
    now: int,
    figures: Mapping[str, float | None] | None = None,
) -> NorthStar:
    """The North Star over 28 days when it declares that window, else its longest one;
    read from the snapshot's ``figures`` when they have it."""
    metric = definitions.get(definitions.north_star)
    windows = metric.windows or (Window.P28D,)
    window = Window.P28D if Window.P28D in windows else max(windows)
    name = f"{metric.id}_{window.value}d"
    if figures is not None and metric.windows and name in figures:
        return NorthStar(metric.id, metric.name, window, figures[name])
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
        "announced": state.announced.value,
        "clock": state.clock,
        "pending_since": state.pending_since,
        "signals": [
            {
                "kind": s.kind.value,
                "severity": s.severity.value,
                "measure": s.measure if math.isfinite(s.measure) else None,
                "raise_at": s.raise_at,
                "sentence": s.sentence,
                "figures": dict(s.figures),
            }
            for s in state.signals
        ],
    }


def risk_from_json(document: Mapping[str, Any]) -> RiskState:
    """The state :func:`risk_to_json` stored (one stored before levels were announced
    after a dwell: its level counts as announced, at the time it was assessed)."""
    level = RiskLevel(document["level"])
    assessed_at = int(document["assessed_at"])
    pending = document.get("pending_since")
    return RiskState(
        level,
        tuple(
            Signal(
                SignalKind(s["kind"]),
                Severity(s["severity"]),
                math.inf if s["measure"] is None else float(s["measure"]),
                float(s["raise_at"]),
                s["sentence"],
                s.get("figures", {}),
            )
            for s in document["signals"]
        ),
        assessed_at,
        RiskLevel(document.get("announced", level)),
        int(document.get("clock", assessed_at)),
        None if pending is None else int(pending),
    )
