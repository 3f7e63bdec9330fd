"""Name an account's core problem by comparing its figures with its tier peers.

The growth path's rules (the metrics file's ``diagnostics`` section) are tried in file
order; the first whose every percentile bound holds is the core problem, with its playbook.
Pure and deterministic: the same values and distributions give the same diagnosis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from services.scoring.definitions.compiled import (
    DiagnosticRule,
    PathDiagnostics,
    PercentileBound,
)
from services.scoring.diagnostics.distribution import PeerDistribution
from services.scoring.diagnostics.peers import PeerGroup
from shared.contracts.scores import ScoreKind, ScoreRecord


class Finding(msgspec.Struct, frozen=True, gc=False):
    """Where the account stands among its peers by one figure, and the bound that held."""

    figure: str
    metric: str
    name: str
    window_days: int | None
    value: float
    percentile: float
    """0..100, rounded to one decimal."""
    at_least: float | None
    below: float | None
    peers: int

    @property
    def band(self) -> str:
        """The bound in words: "the top half", "the bottom 20%", "between the 25th and 75th
        percentile"."""
        if self.at_least is not None and self.below is not None:
            return f"between the {_ordinal(self.at_least)} and {_ordinal(self.below)} percentile"
        if self.at_least is not None:
            return "the top half" if self.at_least == 50 else f"the top {100 - self.at_least:g}%"
        assert self.below is not None
        return "the bottom half" if self.below == 50 else f"the bottom {self.below:g}%"

    @property
    def side(self) -> str:
        if self.at_least is not None and self.below is not None:
            return "middle"
        return "top" if self.at_least is not None else "bottom"

    @property
    def subject(self) -> str:
        """The figure in words: "listings published (28 days)"."""
        name = self.name if self.name[1:2].isupper() else self.name[:1].lower() + self.name[1:]
        if self.window_days is None:
            return name
        return f"{name} ({self.window_days} day{'' if self.window_days == 1 else 's'})"

    def explanation(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "metric": self.metric,
            "window_days": self.window_days,
            "value": self.value,
            "percentile": self.percentile,
            "at_least": self.at_least,
            "below": self.below,
            "peers": self.peers,
        }


class Diagnosis(msgspec.Struct, frozen=True, gc=False):
    """The core problem of an account in ``group``: ``rule`` held, on these ``findings``."""

    group: PeerGroup
    rule: str
    problem: str
    playbook: str
    findings: tuple[Finding, ...]

    @property
    def key(self) -> str:
        """What the diagnosis is, without the figures: publish a ``diagnosis`` event when an
        account's key differs from its last one (and build the event id from it)."""
        return f"{self.group.path}/{self.group.tier or '-'}/{self.rule}"

    @property
    def sentence(self) -> str:
        """The core problem and the evidence, as a CSM reads it."""
        clauses = []
        previous = None
        for finding in self.findings:
            place = (
                f"{finding.band} of {self.group.label} ({_ordinal(finding.percentile)} percentile)"
            )
            if previous is None:
                clauses.append(f"by {finding.subject} the account is in {place}")
            else:
                joint = "and" if finding.side == previous else "but"
                clauses.append(f"{joint} by {finding.subject} it is in {place}")
            previous = finding.side
        return f"{self.problem}: {', '.join(clauses)}."

    def explanation(self) -> dict[str, Any]:
        """The JSON explanation of a ``diagnosis`` score event."""
        return {
            "path": self.group.path,
            "tier": self.group.tier,
            "rule": self.rule,
            "problem": self.problem,
            "playbook": self.playbook,
            "sentence": self.sentence,
            "findings": [finding.explanation() for finding in self.findings],
        }

    def envelope(
        self, *, score_event_id: str, workspace_id: str, account_id: str, occurred_at: datetime
    ) -> ScoreRecord:
        """The ``diagnosis`` event; ``score_event_id`` must be deterministic."""
        return ScoreRecord(
            score_event_id=score_event_id,
            workspace_id=workspace_id,
            account_id=account_id,
            kind=ScoreKind.DIAGNOSIS,
            tier=self.group.tier,
            explanation=self.explanation(),
            occurred_at=occurred_at,
        )


def diagnose(
    rules: PathDiagnostics,
    group: PeerGroup,
    values: Mapping[str, float | None],
    peers: Mapping[str, PeerDistribution],
    metric_names: Mapping[str, str] | None = None,
) -> Diagnosis | None:
    """The core problem of an account in ``group`` with snapshot ``values`` (figure name ->
    value), or ``None`` when no rule holds.

    ``peers`` maps each figure to the distribution of ``group`` (the account's own value
    included); ``metric_names`` gives metrics' display names (default: their ids). A rule is
    skipped when the account lacks a figure it reads or fewer than ``rules.min_peers`` peers
    have that figure: a percentile among a handful of accounts is not evidence.
    """
    for rule in rules.rules:
        if not rule.applies_in(group.tier):
            continue
        findings = _findings(rule, rules.min_peers, values, peers, metric_names or {})
        if findings is not None:
            return Diagnosis(group, rule.id, rule.problem, rule.playbook, findings)
    return None


def _findings(
    rule: DiagnosticRule,
    min_peers: int,
    values: Mapping[str, float | None],
    peers: Mapping[str, PeerDistribution],
    names: Mapping[str, str],
) -> tuple[Finding, ...] | None:
    findings = []
    for bound in rule.when:
        finding = _finding(bound, min_peers, values, peers, names)
        if finding is None:
            return None
        findings.append(finding)
    return tuple(findings)


def _finding(
    bound: PercentileBound,
    min_peers: int,
    values: Mapping[str, float | None],
    peers: Mapping[str, PeerDistribution],
    names: Mapping[str, str],
) -> Finding | None:
    value = values.get(bound.figure)
    distribution = peers.get(bound.figure)
    if value is None or not math.isfinite(value) or distribution is None:
        return None
    if distribution.count < min_peers:
        return None
    percentile = distribution.percentile_of(value)
    if percentile is None or not bound.holds(percentile):
        return None
    return Finding(
        figure=bound.figure,
        metric=bound.metric,
        name=names.get(bound.metric, bound.metric),
        window_days=None if bound.window is None else bound.window.value,
        value=float(value),
        percentile=round(percentile, 1),
        at_least=bound.at_least,
        below=bound.below,
        peers=distribution.count,
    )


def _ordinal(number: float) -> str:
    whole = round(number)
    suffix = "th" if 10 <= whole % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(whole % 10, "th")
    return f"{whole}{suffix}"
