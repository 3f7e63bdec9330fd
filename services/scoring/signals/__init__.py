"""Churn early warning: signals with thresholds and hysteresis, and the risk level. Pure."""

from services.scoring.signals.assess import (
    RiskAssessment,
    RiskState,
    Signal,
    assess,
    risk_level,
)
from services.scoring.signals.rules import (
    DEFAULT_THRESHOLDS,
    Severity,
    SignalConfig,
    SignalKind,
    Threshold,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "RiskAssessment",
    "RiskState",
    "Severity",
    "Signal",
    "SignalConfig",
    "SignalKind",
    "Threshold",
    "assess",
    "risk_level",
]
