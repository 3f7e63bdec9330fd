"""Account health: a 0-100 score from weighted components, with its explanation. Pure."""

from services.scoring.health.components import Component, Thresholds
from services.scoring.health.score import (
    DEFAULT_WEIGHTS,
    Band,
    ComponentScore,
    HealthConfig,
    HealthScore,
    health_explanation,
    meaningful_change,
    score_health,
)
from services.scoring.health.snapshot import AccountSnapshot, Ramp

__all__ = [
    "DEFAULT_WEIGHTS",
    "AccountSnapshot",
    "Band",
    "Component",
    "ComponentScore",
    "HealthConfig",
    "HealthScore",
    "Ramp",
    "Thresholds",
    "health_explanation",
    "meaningful_change",
    "score_health",
]
