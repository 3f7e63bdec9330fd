"""Errors of the portfolio figures."""

from __future__ import annotations

from services.scoring.errors import ScoringError


class PortfolioInputInvalid(ScoringError, ValueError):
    """A period, margin or contract that cannot be measured: the API answers 422 with it."""
