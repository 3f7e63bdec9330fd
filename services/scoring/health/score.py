"""``score_health(snapshot, config) -> HealthScore | None``: 0-100 from weighted components.

Rules:

* Each component (see :mod:`.components`) gives 0..1; its contribution is value x weight
  x 100, weights being shares that add up to 1.
* Weights come from the account's segment: ``(business type, tier)`` first, then the
  business type alone, then the tier alone, then the default.
* A component whose inputs are missing (or whose weight is 0) is left out and the other
  weights are scaled up to add up to 1 again; the explanation names what was left out.
  With no component left there is no score (``None``).
* Bands: healthy from 70, watch from 40, at risk below.
* A change is meaningful (a ``score_changed`` event is due) on the first score, on a band
  change, or when the score moved by at least 5 points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import msgspec

from services.scoring.health import snapshot as s
from services.scoring.health.components import READERS, Component, Thresholds
from services.scoring.health.snapshot import AccountSnapshot

Weights = Mapping[Component, float]

DEFAULT_WEIGHTS: Weights = MappingProxyType(
    {
        Component.USAGE_DEPTH: 20,
        Component.USAGE_BREADTH: 10,
        Component.SEAT_ACTIVATION: 15,
        Component.LOGIN_TREND: 20,
        Component.SUPPORT_LOAD: 10,
        Component.BILLING_STATE: 10,
        Component.RELATIONSHIP: 15,
    }
)


class Band(StrEnum):
    HEALTHY = "healthy"
    WATCH = "watch"
    AT_RISK = "at_risk"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """Thresholds, weights (any positive scale; they are normalised) and bands.

    ``segment_weights`` keys are ``(business_type, tier)``; either may be ``None``."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    default_weights: Weights = field(default_factory=lambda: DEFAULT_WEIGHTS)
    segment_weights: Mapping[tuple[str | None, str | None], Weights] = field(default_factory=dict)
    healthy_from: float = 70.0
    watch_from: float = 40.0
    meaningful_points: float = 5.0

    def __post_init__(self) -> None:
        for weights in (self.default_weights, *self.segment_weights.values()):
            if any(w < 0 for w in weights.values()) or not any(weights.values()):
                raise ValueError("weights must be non-negative and not all zero")
        if not 0 < self.watch_from < self.healthy_from <= 100:
            raise ValueError("bands need 0 < watch_from < healthy_from <= 100")

    def weights_for(self, business_type: str | None, tier: str | None) -> Weights:
        for key in ((business_type, tier), (business_type, None), (None, tier)):
            if key in self.segment_weights:
                return self.segment_weights[key]
        return self.default_weights

    def band(self, score: float) -> Band:
        if score >= self.healthy_from:
            return Band.HEALTHY
        return Band.WATCH if score >= self.watch_from else Band.AT_RISK


class ComponentScore(msgspec.Struct, frozen=True, gc=False):
    """One component's share of the score; ``weight`` is after renormalisation."""

    component: Component
    value: float
    weight: float
    contribution: float
    detail: str

    def sentence(self) -> str:
        return (
            f"{self.component.label}: {self.value:.2f} ({self.detail}), "
            f"weight {self.weight:.0%}, contributes {self.contribution:.1f} points."
        )


class HealthScore(msgspec.Struct, frozen=True, gc=False):
    """A 0-100 score (one decimal), its band, and how it was made."""

    score: float
    band: Band
    components: tuple[ComponentScore, ...]
    missing: tuple[Component, ...]

    def explanation(self) -> tuple[str, ...]:
        """Sentences an operator can read: the total, each component, what was left out."""
        used = len(self.components)
        lines = [
            f"Health {self.score:.1f} of 100 ({self.band.label}) "
            f"from {used} of {used + len(self.missing)} components."
        ]
        lines += [c.sentence() for c in self.components]
        if self.missing:
            names = ", ".join(c.label.lower() for c in self.missing)
            lines.append(
                f"Left out for lack of data: {names}; "
                "the other weights were scaled up to add up to 100%."
            )
        return tuple(lines)

    def as_explanation(self) -> dict[str, Any]:
        """The ``explanation`` of a score envelope."""
        return {
            "band": self.band.value,
            "components": {
                c.component.value: {
                    "value": round(c.value, 4),
                    "weight": round(c.weight, 4),
                    "contribution": round(c.contribution, 2),
                    "detail": c.detail,
                }
                for c in self.components
            },
            "missing": [c.value for c in self.missing],
            "text": list(self.explanation()),
        }


def health_explanation(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The explanation of a health score an account's row keeps (the :class:`HealthScore`
    as JSON), as a ``score_changed`` event's; a row an earlier release wrote keeps that
    explanation itself (with its ``text``) and is read as it is."""
    if "text" in stored:
        return dict(stored)
    return msgspec.convert(stored, HealthScore).as_explanation()


def score_health(snapshot: AccountSnapshot, config: HealthConfig) -> HealthScore | None:
    """The account's health, or ``None`` when no weighted component has data."""
    business_type = snapshot.facts.get(s.BUSINESS_TYPE)
    tier = snapshot.facts.get(s.TIER)
    weights = config.weights_for(
        business_type if isinstance(business_type, str) else None,
        tier if isinstance(tier, str) else None,
    )
    readings = []
    missing = []
    for component, reader in READERS.items():
        weight = float(weights.get(component, 0.0))
        if weight == 0:
            continue
        reading = reader(snapshot, config.thresholds)
        if reading is None:
            missing.append(component)
        else:
            readings.append((component, weight, reading))
    total = sum(weight for _c, weight, _r in readings)
    if not readings:
        return None
    parts = tuple(
        ComponentScore(c, r.value, w / total, 100 * r.value * w / total, r.detail)
        for c, w, r in readings
    )
    score = round(min(100.0, max(0.0, sum(p.contribution for p in parts))), 1)
    return HealthScore(score, config.band(score), parts, tuple(missing))


def meaningful_change(
    previous: HealthScore | None, current: HealthScore, config: HealthConfig
) -> bool:
    """Whether ``current`` is worth a ``score_changed`` event after ``previous``."""
    if previous is None or previous.band is not current.band:
        return True
    return abs(current.score - previous.score) >= config.meaningful_points
